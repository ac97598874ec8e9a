"""Regenerate (or verify) the committed gRPC stubs in ``src/switchyard_sdk/_proto``.

Invariant: the files under ``_proto/`` are exactly what this script produces from
``proto/`` at the repository root with the pinned grpcio-tools; ``--check`` exits 1 when
they differ (a changed contract, or a hand edit).

Steps:
1. Copy the contract into a temporary include root. ``switchyard/v1/*.proto`` is copied
   unchanged. The vendored ``google/rpc/*.proto`` are copied to
   ``switchyard/vendor/google_rpc/`` with their package renamed to
   ``switchyard.vendor.google_rpc``: the wire format does not carry package names, and a
   private name keeps our descriptors from colliding with googleapis-common-protos
   (``duplicate file name google/rpc/status.proto``) when an application imports both.
2. Run grpcio-tools' protoc with ``--python_out``, ``--pyi_out`` and (for v1 only)
   ``--grpc_python_out``.
3. Move the output to ``_proto/v1`` and ``_proto/google_rpc`` and rewrite the absolute
   imports (``from switchyard.v1 import``) so the modules import each other inside the
   installed package.

The generator is pinned old (grpcio-tools 1.62.3, protobuf gencode 4.25): newer ones emit
modules that refuse every protobuf runtime older than themselves, which would force
applications onto the newest protobuf. This gencode loads on protobuf 4.21.6 … 7.x.

Not done: the proto files are discovered by globbing, never listed by hand.
"""

from __future__ import annotations

import argparse
import filecmp
import re
import shutil
import sys
import tempfile
from pathlib import Path

SDK_ROOT = Path(__file__).resolve().parent.parent
REPO_ROOT = SDK_ROOT.parent
PROTO_ROOT = REPO_ROOT / "proto"
OUT_DIR = SDK_ROOT / "src" / "switchyard_sdk" / "_proto"

VENDOR_PACKAGE = "switchyard.vendor.google_rpc"
VENDOR_DIR = Path("switchyard/vendor/google_rpc")

# (generated path prefix, destination folder under _proto, python package of destination)
LAYOUT = [
    ("switchyard/v1", "v1", "switchyard_sdk._proto.v1"),
    (str(VENDOR_DIR), "google_rpc", "switchyard_sdk._proto.google_rpc"),
]

INIT_TEXT = '"""Generated code; see scripts/gen_stubs.py. Do not edit."""\n'


def _stage_protos(include: Path) -> tuple[list[str], list[str]]:
    """Copy the contract into `include`; return (service protos, message-only protos)."""
    services: list[str] = []
    for src in sorted((PROTO_ROOT / "switchyard" / "v1").glob("*.proto")):
        rel = Path("switchyard/v1") / src.name
        (include / rel).parent.mkdir(parents=True, exist_ok=True)
        # Point the contract's google.rpc references at the private vendored package.
        text = src.read_text()
        text = text.replace('import "google/rpc/', f'import "{VENDOR_DIR}/')
        text = re.sub(r"\bgoogle\.rpc\.", f"{VENDOR_PACKAGE}.", text)
        (include / rel).write_text(text)
        services.append(str(rel))
    vendored: list[str] = []
    for src in sorted((PROTO_ROOT / "google" / "rpc").glob("*.proto")):
        rel = VENDOR_DIR / src.name
        (include / rel).parent.mkdir(parents=True, exist_ok=True)
        text = src.read_text()
        text, n = re.subn(r"^package google\.rpc;", f"package {VENDOR_PACKAGE};", text, flags=re.M)
        if n != 1:
            raise SystemExit(f"{src}: expected one 'package google.rpc;' line")
        (include / rel).write_text(text)
        vendored.append(str(rel))
    return services, vendored


def _protoc(include: Path, out: Path, files: list[str], grpc: bool) -> None:
    from grpc_tools import protoc  # dev dependency
    import grpc_tools

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    args = ["protoc", f"-I{include}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}"]
    if grpc:
        args.append(f"--grpc_python_out={out}")
    if protoc.main(args + files) != 0:
        raise SystemExit("protoc failed")


def _rewrite(text: str) -> str:
    for prefix, _, package in LAYOUT:
        dotted = prefix.replace("/", ".")
        text = re.sub(rf"^from {re.escape(dotted)} import ", f"from {package} import ", text, flags=re.M)
        # the module name given to the message builder (not service names, which stay)
        text = re.sub(rf"'{re.escape(dotted)}\.(\w+_pb2)'", rf"'{package}.\1'", text)
    return text


def generate(dest: Path) -> None:
    """Write the complete generated tree to `dest` (which must not exist)."""
    with tempfile.TemporaryDirectory() as tmp:
        include, raw = Path(tmp, "include"), Path(tmp, "raw")
        include.mkdir()
        raw.mkdir()
        services, vendored = _stage_protos(include)
        _protoc(include, raw, services, grpc=True)
        _protoc(include, raw, vendored, grpc=False)
        dest.mkdir(parents=True)
        (dest / "__init__.py").write_text(INIT_TEXT)
        for prefix, folder, _ in LAYOUT:
            (dest / folder).mkdir()
            (dest / folder / "__init__.py").write_text(INIT_TEXT)
            for f in sorted((raw / prefix).iterdir()):
                if f.is_file():
                    (dest / folder / f.name).write_text(_rewrite(f.read_text()))


def _diff(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between two trees (ignoring __pycache__)."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}

    fa, fb = files(a), files(b)
    changed = sorted(fa ^ fb)
    changed += sorted(p for p in fa & fb if not filecmp.cmp(a / p, b / p, shallow=False))
    return changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed stubs drift")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp, "_proto")
        generate(fresh)
        if args.check:
            if not OUT_DIR.exists():
                print(f"stub drift: {OUT_DIR} is missing; run scripts/gen_stubs.py", file=sys.stderr)
                return 1
            changed = _diff(fresh, OUT_DIR)
            if changed:
                print("stub drift: these generated files differ from proto/ "
                      "(run scripts/gen_stubs.py):", file=sys.stderr)
                for path in changed:
                    print(f"  {path}", file=sys.stderr)
                return 1
            print("stubs are up to date")
            return 0
        if OUT_DIR.exists():
            shutil.rmtree(OUT_DIR)
        shutil.copytree(fresh, OUT_DIR)
        print(f"wrote {OUT_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
