// A transient notice at the bottom of the page, for messages the user
// should see but need not act on (a refused resize, a restart). Errors go
// here rather than to the console: the page logs nothing in normal use.

const SHOW_MS = 6000;
let timer = 0;

export function notice(message) {
  const el = document.getElementById('notice');
  el.textContent = message;
  el.hidden = false;
  clearTimeout(timer);
  timer = setTimeout(() => {
    el.hidden = true;
  }, SHOW_MS);
}
