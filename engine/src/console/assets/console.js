// Switchyard console: confirms redrive and discard, and keeps live pages fresh.
// No framework, no network access beyond this console's own pages.
"use strict";

// Every action form says what it is about to do; nothing is sent without a yes.
document.addEventListener("submit", (event) => {
  const question = event.target.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});

// Pages with data-live="MS" re-read themselves every MS milliseconds and swap in their
// #live part (the numbers), leaving the rest (forms, notices) alone.
const every = Number(document.body.getAttribute("data-live"));
if (every > 0) {
  setInterval(async () => {
    try {
      const response = await fetch(window.location.href, { cache: "no-store" });
      if (!response.ok) return;
      const next = new DOMParser().parseFromString(await response.text(), "text/html").getElementById("live");
      const live = document.getElementById("live");
      if (next && live) live.replaceWith(next);
    } catch (_) {
      // The engine is restarting or gone: keep showing the last numbers.
    }
  }, every);
}
