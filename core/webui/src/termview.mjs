// The terminal view (#/s/ID): an xterm.js terminal fed by an Attachment.

import { Terminal } from './vendor/xterm.mjs';
import { FitAddon } from './vendor/addon-fit.mjs';
import { WebLinksAddon } from './vendor/addon-web-links.mjs';
import { WebglAddon } from './vendor/addon-webgl.mjs';
import { exitText } from './api.mjs';
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
    };
    this.raf = 0;
    this.disposed = false;
    this.resets = 0; // see the test hook in app.mjs
  }

  get offset() {
    return this.conn ? this.conn.offset : 0;
  }

  open() {
    const { host, title, badge, banner } = this.el;
    title.textContent = this.sessionId;
    badge.hidden = !this.readOnly;
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
      output: (bytes) => term.write(bytes),
      // In band, after what is already queued: term.reset() would clear
      // the screen at once and then draw the stale output still queued
      // for write() over the replay.
      reset: () => {
        this.resets++;
        term.write('\x1bc');
      },
      modes: (data) => term.write(data),
      hello: (msg) => this.hello(msg),
      resize: (cols, rows) => {
        // A writer's size is its window's (the fit addon); a viewer shows
        // the session's.
        if (this.readOnly) term.resize(cols, rows);
      },
      restarted: () => notice('The session was restarted: a new program is running.'),
      exit: (info) => this.exit(info),
      notice,
    });

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

  refit() {
    if (this.disposed || this.readOnly) return;
    try {
      this.fit.fit();
    } catch {
      // A hidden container has no size to fit to; the next resize refits.
    }
  }

  hello(msg) {
    if (this.readOnly) {
      this.term.resize(msg.cols, msg.rows);
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
