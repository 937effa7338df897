// The terminal view (#/s/ID): an xterm.js terminal fed by an Attachment.

import { Terminal } from './vendor/xterm.mjs';
import { FitAddon } from './vendor/addon-fit.mjs';
import { WebLinksAddon } from './vendor/addon-web-links.mjs';
import { WebglAddon } from './vendor/addon-webgl.mjs';
import { exitText } from './api.mjs';
import { LineClamp } from './clamp.mjs';
import { Attachment } from './conn.mjs';
import { notice } from './notice.mjs';
import { currentTheme, onThemeChange } from './theme.mjs';

const STATE_LABELS = {
  connecting: 'Connecting…',
  open: 'Connected',
  reconnecting: 'Reconnecting…',
  closed: 'Disconnected',
};

const encoder = new TextEncoder();

// The largest terminal the protocol allows, either way.
const MAX_SIZE = 1000;

// The largest terminal a viewer draws. A viewer takes the session's size,
// which a writer may make anything up to MAX_SIZE either way: 1000×1000 is
// a million cells and, with WebGL, a canvas of 8,000 × 16,000 pixels,
// whose first draw in software rendering (a machine without a GPU) froze
// the tab for seconds, and each frame after it for about a second.
// 500×200 is more than a whole 4K screen holds at the page's font (about
// 455×135), so a session sized by a writer's window is shown whole; a
// larger one is drawn cut to it (lines wrap at 500 columns, and what the
// program puts below row 200 lands on the last), and the bar says so.
const VIEW_MAX_COLS = 500;
const VIEW_MAX_ROWS = 200;

// The queries a terminal answers (xterm.js's handlers that reply): device
// attributes, device status and cursor position, the mode requests, the
// setting request (DCS $ q). In the replay they are history: the program
// asked them long ago and had its answer from whichever terminal was
// there; answered again, they would reach it as typed input.
const QUERIES_CSI = [
  { final: 'c' },
  { prefix: '>', final: 'c' },
  { final: 'n' },
  { prefix: '?', final: 'n' },
  { intermediates: '$', final: 'p' },
  { prefix: '?', intermediates: '$', final: 'p' },
];
// The window reports of CSI t (the others change the window).
const WINDOW_REPORTS = new Set([11, 13, 14, 15, 16, 18, 19, 20, 21]);
// Color queries: OSC 4 (palette), 10, 11, 12 with "?" for the color.
const QUERIES_OSC = [4, 10, 11, 12];

// What a new program in place of the old one starts from (a restart in
// place): the modes a fresh terminal has. CAN first ends a sequence the
// old program left unfinished. Then: main screen (leaving the alternate
// one restores the main screen's saved cursor, so the cursor is saved
// first: on the main screen that keeps it where it is), no mouse reporting,
// normal cursor keys and keypad, no bracketed paste, no focus reports, a
// visible cursor of the default style, default colors.
const FRESH_MODES =
  '\x18\x1b7\x1b[?1049l\x1b[?9l\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1005l\x1b[?1006l\x1b[?1015l' +
  '\x1b[?1l\x1b>\x1b[?2004l\x1b[?1004l\x1b[?25h\x1b[0 q\x1b[m';

export class TerminalView {
  // sessionId: the session; readOnly: attach as a viewer (mode=read);
  // forceDOM: skip the WebGL renderer (?renderer=dom).
  constructor({ sessionId, readOnly, forceDOM }) {
    this.sessionId = sessionId;
    this.readOnly = readOnly;
    this.forceDOM = forceDOM;
    this.el = {
      host: document.getElementById('terminal'),
      title: document.getElementById('term-title'),
      badge: document.getElementById('readonly-badge'),
      state: document.getElementById('conn-state'),
      banner: document.getElementById('exit-banner'),
      size: document.getElementById('size-badge'),
    };
    this.raf = 0;
    this.disposed = false;
    // history: the parser is in output the page was not there for (the
    // replay), whose queries it must not answer. It changes in band, at
    // its place in the output (see output).
    this.history = false;
    this.historyWritten = false;
    this.resets = 0; // see the test hook in app.mjs
  }

  get offset() {
    return this.conn ? this.conn.offset : 0;
  }

  open() {
    const { host, title, badge, banner, size } = this.el;
    title.textContent = this.sessionId;
    badge.hidden = !this.readOnly;
    size.hidden = true;
    size.textContent = '';
    size.title = '';
    banner.hidden = true;
    banner.textContent = '';
    host.replaceChildren();

    const term = new Terminal({
      cursorBlink: !this.readOnly,
      disableStdin: this.readOnly,
      fontFamily: 'ui-monospace, "Cascadia Mono", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      scrollback: 10000,
      theme: currentTheme(),
    });
    this.term = term;
    this.clamp = new LineClamp(() => term.rows);
    this.fit = new FitAddon();
    term.loadAddon(this.fit);
    term.loadAddon(new WebLinksAddon());
    term.open(host);
    if (!this.forceDOM) this.loadWebgl();
    this.stopTheme = onThemeChange((theme) => {
      term.options.theme = theme;
    });

    this.conn = new Attachment({
      sessionId: this.sessionId,
      readOnly: this.readOnly,
      state: (state, why) => this.setState(state, why),
      output: (bytes, history) => this.output(bytes, history),
      // In band, after what is already queued: term.reset() would clear
      // the screen at once and then draw the stale output still queued
      // for write() over the replay.
      reset: () => {
        this.resets++;
        this.clamp.drop(); // what it held was cut off
        term.write('\x1bc');
      },
      modes: (data) => term.write(data),
      hello: (msg) => this.hello(msg),
      resize: (cols, rows) => {
        // A writer's size is its window's (the fit addon); a viewer shows
        // the session's.
        if (this.readOnly) this.showSize(cols, rows);
      },
      restarted: (history) => {
        term.write(FRESH_MODES);
        if (!history) notice('The session was restarted: a new program is running.');
      },
      exit: (info) => this.exit(info),
      notice,
    });

    this.ignoreHistoryQueries(term);
    term.onData((data) => this.conn.send(encoder.encode(data)));
    term.onBinary((data) => {
      // onBinary's string holds one byte per character (mouse reports in
      // the X10 encoding): send those bytes, not their UTF-8 encoding.
      const bytes = new Uint8Array(data.length);
      for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
      this.conn.send(bytes);
    });
    term.onResize(({ cols, rows }) => this.conn.resize(cols, rows));

    // The container follows the window (CSS); refit when it changes size.
    // The fit runs in the next frame, not inside the observer's callback,
    // so that the terminal's own resize cannot loop the observer.
    this.observer = new ResizeObserver(() => {
      if (this.raf) return;
      this.raf = requestAnimationFrame(() => {
        this.raf = 0;
        this.refit();
      });
    });
    this.observer.observe(host);
    this.refit();
    this.conn.start();
    term.focus();
  }

  // loadWebgl switches to the WebGL renderer where the browser has
  // WebGL2, and back to the DOM renderer if the GPU context is lost.
  loadWebgl() {
    let addon;
    try {
      addon = new WebglAddon();
      addon.onContextLoss(() => addon.dispose());
      this.term.loadAddon(addon);
    } catch {
      // No WebGL2 here (a headless browser, a blocked GPU): xterm's DOM
      // renderer, which it started with, stays.
      try {
        addon?.dispose();
      } catch {
        // It never activated; nothing to undo.
      }
    }
  }

  // output writes output bytes; history says they are (or begin in) the
  // replay. The parser learns it where they begin: a write's callback runs
  // once everything written before it has been parsed.
  output(bytes, history) {
    if (history !== this.historyWritten) {
      this.historyWritten = history;
      this.term.write('', () => {
        this.history = history;
      });
    }
    this.term.write(this.clamp.feed(bytes));
  }

  // ignoreHistoryQueries makes the terminal leave the queries in the
  // replay unanswered (QUERIES_CSI); a handler that returns true is the
  // last, and xterm.js's own, which answers, does not run.
  ignoreHistoryQueries(term) {
    const inHistory = () => this.history;
    for (const id of QUERIES_CSI) term.parser.registerCsiHandler(id, inHistory);
    term.parser.registerCsiHandler({ final: 't' }, (params) => this.history && WINDOW_REPORTS.has(params[0]));
    term.parser.registerDcsHandler({ intermediates: '$', final: 'q' }, inHistory);
    for (const ident of QUERIES_OSC) {
      term.parser.registerOscHandler(ident, (data) => this.history && data.includes('?'));
    }
  }

  refit() {
    if (this.disposed || this.readOnly) return;
    try {
      this.fit.fit();
    } catch {
      // A hidden container has no size to fit to; the next resize refits.
      return;
    }
    // A window too large for the protocol gets the largest terminal.
    const { cols, rows } = this.term;
    if (cols > MAX_SIZE || rows > MAX_SIZE) this.term.resize(Math.min(cols, MAX_SIZE), Math.min(rows, MAX_SIZE));
  }

  // showSize gives a viewer's terminal the session's size, cols×rows, cut
  // to VIEW_MAX_COLS×VIEW_MAX_ROWS, and shows the cut in the bar.
  showSize(cols, rows) {
    const c = Math.max(1, Math.min(cols, VIEW_MAX_COLS));
    const r = Math.max(1, Math.min(rows, VIEW_MAX_ROWS));
    this.term.resize(c, r);
    const { size } = this.el;
    const cut = c < cols || r < rows;
    size.hidden = !cut;
    size.textContent = cut ? `showing ${c}×${r} of ${cols}×${rows}` : '';
    size.title = cut
      ? `The session's terminal is ${cols}×${rows}; a viewer here draws at most ` +
        `${VIEW_MAX_COLS}×${VIEW_MAX_ROWS}, so what the program puts beyond that is out of place.`
      : '';
  }

  hello(msg) {
    if (this.readOnly) {
      this.showSize(msg.cols, msg.rows);
      return;
    }
    // A (re)connected writer asks for its window's size: the server
    // forgot the previous connection's ask.
    this.refit();
    this.conn.resize(this.term.cols, this.term.rows);
  }

  exit(info) {
    const { banner } = this.el;
    // "Session a1 exited with code 3", "Session destroyed — killed by
    // SIGHUP", or a sentence of its own ("session a1 does not exist").
    let text;
    if (info.text) text = info.text;
    else if (info.prefix) text = `${info.prefix} — ${exitText(info)}`;
    else text = `Session ${this.sessionId} ${exitText(info)}`;
    banner.textContent = text;
    banner.hidden = false;
    this.term.options.disableStdin = true;
    this.term.options.cursorBlink = false;
  }

  // setState shows the connection's state as text (not only colour); why
  // a reconnect happens goes in the tooltip, to keep the bar short.
  setState(state, why) {
    const el = this.el.state;
    el.dataset.state = state;
    el.querySelector('.label').textContent = STATE_LABELS[state];
    el.title = why || '';
  }

  dispose() {
    this.disposed = true;
    this.conn?.dispose();
    this.observer?.disconnect();
    cancelAnimationFrame(this.raf);
    this.stopTheme?.();
    this.term?.dispose();
    this.el.host.replaceChildren();
  }
}
