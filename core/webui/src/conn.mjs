// One attachment of the page to a session: the WebSocket of
// docs/protocol.md ("Attaching"), the absolute output offset, and the
// reconnects with ?offset= resume. It knows nothing of the DOM: the
// terminal view passes callbacks.

import { api, APIError, backoff, ended, recordExit, sessionPath, wsProtocols, wsURL } from './api.mjs';

const SUBPROTOCOL = 'ptyhost.v1';

// Close codes after which the session is over: no reconnect.
const CLOSE_ENDED = 1000; // destroyed, or exited (after the exit message)
const CLOSE_PLUGIN_CRASHED = 4010;

// The protocol's bounds on what a client sends: a frame of input (the
// server takes up to 1 MiB), a terminal size (1..1000 either way).
const INPUT_FRAME = 64 * 1024;
const MAX_SIZE = 1000;

// isNodeLost says whether a session record is ERROR node_lost, of a
// node of a cluster (docs/protocol.md, "Between nodes").
function isNodeLost(record) {
  const reason = record && typeof record.status_reason === 'string' ? record.status_reason : '';
  return !!record && record.status === 'ERROR' && reason.startsWith('node_lost') && !!record.node;
}

export class Attachment {
  // opts: {sessionId, readOnly, and callbacks:
  //   state(state, why)    "connecting" | "open" | "reconnecting" | "closed",
  //                        and why it reconnects"
  //   output(Uint8Array, history)  output bytes, in order; history: they
  //                        are (or begin in) the replay of what came
  //                        before this page attached
  //   reset()              clear the terminal (a fresh replay follows)
  //   modes(string)        escape sequences to write before the replay
  //   hello(msg)           after each hello, once the terminal is ready
  //   resize(cols, rows)   the session's terminal size changed
  //   restarted(history)   the program was restarted in place (history:
  //                        in the replay, before this page attached)
  //   exit(info)           the session ended: {code, signal, reason} or {text}
  //   notice(message)      something to show for a moment}
  constructor(opts) {
    this.opts = opts;
    this.sessionId = opts.sessionId;
    this.readOnly = !!opts.readOnly;
    this.ws = null;
    // offset is the absolute offset of the next output byte: hello's (or
    // reset's) offset plus the bytes received since. It is what a
    // reconnect resumes at.
    this.offset = 0;
    // epoch is the hello's: the session the offset counts in. A reconnect
    // gives it back, so that a session created again under the id meanwhile
    // answers with a reset rather than its own bytes from the offset.
    this.epoch = '';
    // replayEnd is the hello's (or reset's) end: output before it is
    // history, whose queries the terminal must not answer (termview).
    this.replayEnd = 0;
    this.hadHello = false;
    this.exited = false;
    this.disposed = false;
    this.attempt = 0;
    // refusal is why the server last closed with 1013, until the next
    // hello: what a refused upgrade meanwhile means.
    this.refusal = '';
    this.timer = 0;
    this.lastSize = null;
    // endedRecord is the ended session's record this page attached
    // after all, on a reconnect, to get what it missed (connect).
    this.endedRecord = null;
    // attachPath is the last attach's path and query; wsHello says
    // whether its WebSocket has had its hello.
    this.attachPath = '';
    this.wsHello = false;
  }

  start() {
    this.connect();
  }

  // connect asks first whether the session still runs: the upgrade of an
  // ended session is answered 410, which a browser reports as nothing but
  // a failed WebSocket (and an error in the console).
  async connect() {
    if (this.disposed) return;
    this.setState(this.hadHello ? 'reconnecting' : 'connecting');
    let record;
    try {
      record = await api('GET', sessionPath(this.sessionId));
    } catch (err) {
      if (this.disposed) return;
      if (err instanceof APIError && err.status === 404) {
        this.finish({ text: `session ${this.sessionId} does not exist (or is gone)` });
        return;
      }
      if (err instanceof APIError && err.status > 0 && err.status < 500) {
        // 400, 403: asking again will not change the answer.
        this.finish({ text: `cannot attach: ${err.message}` });
        return;
      }
      // The server is down or restarting: keep trying, as the protocol asks.
      this.retry(err.message);
      return;
    }
    if (this.disposed) return;
    if (ended(record)) {
      const node = await this.lostNode(record);
      if (this.disposed) return;
      if (node === null) {
        this.retry('the session runs again');
        return;
      }
      if (node) {
        // Not over yet: its node may come back with it (docs/protocol.md,
        // "Between nodes"), as the server's 503 says to the attach.
        this.retry(`node ${node} is lost; waiting for it to come back`);
        return;
      }
      if (!this.hadHello || this.endedRecord) {
        this.finish(recordExit(record));
        return;
      }
      // A reconnect to a session that ended while this page was away: it
      // may still linger in the server's memory, and then its attach gives
      // the output this page missed, up to the exit (docs/protocol.md).
      // Once only: one that no longer lingers refuses the upgrade (410),
      // and closed() shows this record's end.
      this.endedRecord = record;
    }
    const params = {};
    if (this.hadHello) {
      params.offset = this.offset;
      if (this.epoch) params.epoch = this.epoch;
    }
    if (this.readOnly) params.mode = 'read';
    this.attachPath = sessionPath(this.sessionId, '/attach') + '?' + new URLSearchParams(params);
    this.wsHello = false;
    const ws = new WebSocket(wsURL(sessionPath(this.sessionId, '/attach'), params), wsProtocols(SUBPROTOCOL));
    ws.binaryType = 'arraybuffer';
    ws.onmessage = (ev) => this.message(ev.data);
    ws.onclose = (ev) => this.closed(ws, ev);
    this.ws = ws;
    this.lastSize = null;
  }

  message(data) {
    if (this.disposed) return;
    if (typeof data !== 'string') {
      const bytes = new Uint8Array(data);
      const start = this.offset;
      this.offset += bytes.length;
      // A frame may hold the end of the history and new output after it.
      const history = Math.max(0, Math.min(bytes.length, this.replayEnd - start));
      if (history > 0) this.opts.output(bytes.subarray(0, history), true);
      if (history < bytes.length) this.opts.output(bytes.subarray(history), false);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      this.opts.notice('the server sent a control message that is not JSON; ignored');
      return;
    }
    switch (msg.type) {
      case 'hello':
        // A first connect starts from a fresh terminal. A reconnect keeps
        // what the terminal shows when the server resumes exactly where
        // this page stopped; otherwise a replay follows, from scratch.
        if (!this.hadHello || msg.offset !== this.offset) this.opts.reset();
        this.offset = msg.offset;
        this.replayEnd = typeof msg.end === 'number' ? msg.end : msg.offset;
        this.epoch = msg.epoch || '';
        this.hadHello = true;
        this.wsHello = true;
        this.attempt = 0;
        this.refusal = '';
        this.setState('open');
        this.opts.hello(msg);
        break;
      case 'reset':
        this.offset = msg.offset;
        this.replayEnd = typeof msg.end === 'number' ? msg.end : msg.offset;
        this.opts.reset();
        break;
      case 'modes':
        this.opts.modes(msg.data);
        break;
      case 'resize':
        this.opts.resize(msg.cols, msg.rows);
        break;
      case 'restarted':
        this.offset = msg.offset;
        this.opts.restarted(msg.offset < this.replayEnd);
        break;
      case 'exit':
        this.exited = true;
        this.opts.exit({ code: msg.code, signal: msg.signal, reason: msg.reason });
        break;
      case 'error':
        this.opts.notice(msg.message);
        break;
      default:
        // Newer servers may send more; the protocol lets clients ignore it.
        break;
    }
  }

  closed(ws, ev) {
    if (ws !== this.ws) return;
    this.ws = null;
    if (this.disposed) return;
    if (this.exited) {
      // The exit message came first (1000 Session exited, 1001 hung up,
      // 4010 plugin crashed): the banner says it all.
      this.setState('closed');
      return;
    }
    if (this.endedRecord) {
      this.finish(recordExit(this.endedRecord));
      return;
    }
    if (ev.code === CLOSE_ENDED || ev.code === CLOSE_PLUGIN_CRASHED) {
      this.finishFromRecord(ev.reason || 'the session ended');
      return;
    }
    // 1012 (server restarting), 1001, 1006 (dropped, or the upgrade was
    // refused), 1013 (too many clients, or a viewer whose place a writer
    // took): attach again, resuming at offset. connect() finds out from
    // the record when the session has ended. While a session is full,
    // its upgrade is refused with 409, which a browser sees as 1006: the
    // reason of the 1013 that came first still says why.
    if (ev.code === 1013 && ev.reason) this.refusal = ev.reason;
    if (ev.code === 1006 && !this.wsHello) {
      this.refused();
      return;
    }
    this.retry(ev.reason || (ev.code === 1006 ? this.refusal || 'connection lost' : `closed with code ${ev.code}`));
  }

  // refused finds out why the server refused the upgrade, which a
  // browser's WebSocket sees only as a failure (1006), by asking the attach
  // endpoint again without one: it makes the same checks first, and
  // answers 426 only when they pass (docs/protocol.md). A session with
  // every place taken (409) is tried again, saying so; a refusal that
  // will not change (400, 403) ends the attempts; the others (the server
  // is down, 404 or 410, which connect() reads from the record) retry.
  async refused() {
    let why = this.refusal || 'connection lost';
    try {
      await api('GET', this.attachPath);
    } catch (err) {
      if (this.disposed) return;
      // A viewer a writer displaced keeps that reason: it says why the
      // session is full for it.
      if (err instanceof APIError && err.status === 409 && !this.refusal) why = err.message;
      if (err instanceof APIError && (err.status === 400 || err.status === 403)) {
        this.finish({ text: `cannot attach: ${err.message}` });
        return;
      }
    }
    if (this.disposed) return;
    this.retry(why);
  }

  // lostNode returns the name of the node of a session recorded ERROR
  // node_lost while that node is away (not listed healthy), else ''. Such
  // a record is not final: the node may come back and take the session
  // up. A node lists as healthy once it has taken its sessions up: the
  // record, read again, is then final if still node_lost; null when it
  // is not (the node took the session up between the two reads). When
  // the nodes cannot be read, it counts the node as away, to be asked
  // again, unless the answer is a refusal that will not change.
  async lostNode(record) {
    if (!isNodeLost(record)) return '';
    try {
      const res = await api('GET', 'api/v1/nodes');
      const nodes = res && Array.isArray(res.nodes) ? res.nodes : [];
      const node = nodes.find((n) => n && n.name === record.node);
      if (!node || !node.healthy) return record.node;
      const again = await api('GET', sessionPath(this.sessionId));
      return isNodeLost(again) ? '' : null;
    } catch (err) {
      if (err instanceof APIError && err.status > 0 && err.status < 500) return '';
      return record.node;
    }
  }

  retry(why) {
    const delay = backoff(this.attempt++);
    this.setState('reconnecting', why);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  // finishFromRecord shows how the session ended from its record, since
  // the close said only that it did (a destroy sends no exit message).
  async finishFromRecord(fallback) {
    try {
      const record = await api('GET', sessionPath(this.sessionId));
      if (ended(record)) {
        this.finish({ ...recordExit(record), prefix: fallback });
        return;
      }
    } catch {
      // The record is gone or unreachable: the close's reason is all there is.
    }
    this.finish({ text: fallback });
  }

  finish(info) {
    if (this.disposed) return;
    this.exited = true;
    this.setState('closed');
    this.opts.exit(info);
  }

  setState(state, why) {
    this.opts.state(state, why);
  }

  // send writes input bytes; nothing while disconnected or read-only (a
  // reconnect does not replay keystrokes typed into a dead connection).
  // A large paste goes in frames the server takes (at most 1 MiB each).
  send(bytes) {
    if (this.readOnly || !this.ws || this.ws.readyState !== WebSocket.OPEN || !this.hadHello) return;
    for (let i = 0; i < bytes.length; i += INPUT_FRAME) {
      this.ws.send(bytes.subarray(i, i + INPUT_FRAME));
    }
  }

  // resize asks for the terminal size cols×rows, only when it differs from
  // the last one this connection asked for; viewers never ask.
  resize(cols, rows) {
    if (this.readOnly || !this.ws || this.ws.readyState !== WebSocket.OPEN || !this.hadHello) return;
    cols = Math.min(Math.max(cols, 1), MAX_SIZE);
    rows = Math.min(Math.max(rows, 1), MAX_SIZE);
    if (this.lastSize && this.lastSize.cols === cols && this.lastSize.rows === rows) return;
    this.lastSize = { cols, rows };
    this.ws.send(JSON.stringify({ type: 'resize', cols, rows }));
  }

  dispose() {
    this.disposed = true;
    clearTimeout(this.timer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      if (ws.readyState === WebSocket.CONNECTING) {
        // Closing a socket still connecting logs an error in Chrome; let
        // it open, then close it.
        ws.onopen = () => ws.close(1000, 'page left');
        ws.onmessage = null;
      } else {
        ws.close(1000, 'page left');
      }
    }
  }
}
