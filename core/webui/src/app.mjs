// The page's entry point: asks for the token when the server wants one,
// then routes on the URL's hash — #/ the sessions list, #/s/ID a terminal
// attached to ID, #/s/ID?mode=read a read-only viewer. The page's own
// query says how to render: ?renderer=dom forces xterm's DOM renderer;
// ?testhook=1 sets the browser tests' hook (below).

import { api, sendableToken, setToken, setUnauthorizedHandler } from './api.mjs';
import { CreateForm } from './create.mjs';
import { SessionList } from './list.mjs';
import { notice } from './notice.mjs';
import { TerminalView } from './termview.mjs';

const query = new URLSearchParams(location.search);
const forceDOM = query.get('renderer') === 'dom';

const listView = document.getElementById('list-view');
const termView = document.getElementById('term-view');

let scope = 'full';
let list = null;
let create = null;
let view = null;

// The test hook (docs of the browser tests): the terminal, the session,
// the output offset, the count of resets and the terminal's text. It is
// window.ptyhost only when the page is loaded with ?testhook=1, as
// internal/browsertest loads it; otherwise the page puts nothing on
// window, and no page carries a global whose shape nothing promises. The
// flag gives nothing to a site that links here with it: the hook is a
// property of this page's window, which only scripts of this origin can
// reach (the CSP lets no other script run here, frame-ancestors 'none'
// keeps the page out of other sites' frames, and Cross-Origin-Opener-
// Policy takes the handle of a window that opened it), and such a script
// can already do what the hook does, through the API with the tab's token.
const hook = {
  term: null,
  sessionId: null,
  ready: false,
  get offset() {
    return view ? view.offset : 0;
  },
  // resets counts the times the terminal was started afresh for a
  // replay: the first hello, a reset, a hello at another offset than the
  // page's own on a reconnect.
  get resets() {
    return view ? view.resets : 0;
  },
  // text returns the terminal's active buffer, one line per row with
  // trailing spaces trimmed, joined with "\n".
  text() {
    if (!hook.term) return '';
    const buf = hook.term.buffer.active;
    const lines = [];
    for (let i = 0; i < buf.length; i++) {
      const line = buf.getLine(i);
      lines.push(line ? line.translateToString(true) : '');
    }
    return lines.join('\n');
  },
};
if (query.get('testhook') === '1') window.ptyhost = hook;

// askToken shows the token dialog and resolves once a token is entered.
// wrong: the last token sent was refused.
function askToken(wrong) {
  const dialog = document.getElementById('token-dialog');
  const form = document.getElementById('token-form');
  const input = document.getElementById('token-input');
  const error = document.getElementById('token-error');
  error.textContent = wrong ? 'Wrong token: the server refused it. Check it and try again.' : '';
  input.value = '';
  if (!dialog.open) dialog.showModal();
  input.focus();
  return new Promise((resolve) => {
    form.onsubmit = (ev) => {
      ev.preventDefault();
      const token = input.value.trim();
      if (!token) return;
      if (!sendableToken(token)) {
        error.textContent =
          'This token has a character beyond ASCII (smart punctuation such as “—” from a paste, say), which a browser cannot send. Paste it again as plain text.';
        return;
      }
      form.onsubmit = null;
      setToken(token);
      dialog.close();
      resolve();
    };
  });
}

function parseHash() {
  const m = /^#\/s\/([^?]+)(?:\?(.*))?$/.exec(location.hash);
  if (!m) return { name: 'list' };
  let id;
  try {
    id = decodeURIComponent(m[1]);
  } catch {
    return { name: 'list' };
  }
  const q = new URLSearchParams(m[2] || '');
  return { name: 'term', id, readOnly: q.get('mode') === 'read' };
}

async function route() {
  const r = parseHash();
  if (view) {
    view.dispose();
    view = null;
    hook.term = null;
    hook.sessionId = null;
  }
  if (r.name === 'term') {
    list.stop();
    listView.hidden = true;
    termView.hidden = false;
    document.title = `${r.id} — ptyhost`;
    // The read-only token may only watch.
    view = new TerminalView({ sessionId: r.id, readOnly: r.readOnly || scope === 'read', forceDOM });
    view.open();
    hook.term = view.term;
    hook.sessionId = r.id;
    return;
  }
  termView.hidden = true;
  listView.hidden = false;
  document.title = 'ptyhost';
  list.start();
  await Promise.all([list.fetching, create?.loadEnvironments()]);
}

async function boot() {
  setUnauthorizedHandler(askToken);
  document.getElementById('token-dialog').addEventListener('cancel', (ev) => {
    // Without a token the page can do nothing: keep asking.
    ev.preventDefault();
  });
  try {
    const auth = await api('GET', 'api/v1/auth');
    scope = auth.scope === 'read' ? 'read' : 'full';
  } catch (err) {
    // A server without the endpoint (older, or an embedder's) still
    // serves everything else: assume the full scope and go on.
    if (err.status !== 404 && err.status !== 501) {
      document.getElementById('list-error').textContent = `Cannot ask the server what this page may do: ${err.message}`;
    }
  }
  document.body.classList.toggle('scope-read', scope === 'read');
  document.getElementById('scope-badge').hidden = scope !== 'read';
  list = new SessionList({ scope });
  if (scope === 'full') create = new CreateForm();
  window.addEventListener('hashchange', () => {
    route().catch((err) => notice(`Cannot show ${location.hash}: ${err.message}`));
  });
  await route();
  hook.ready = true;
}

boot().catch((err) => {
  document.getElementById('list-error').textContent = `The page failed to start: ${err.message}`;
  listView.hidden = false;
});
