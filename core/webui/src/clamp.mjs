// The output's line counts that xterm.js runs once per line without a
// bound: scroll up and down (CSI n S, CSI n T) and insert and delete lines
// (CSI n L, CSI n M). Twelve bytes asking to scroll 99,999,999 lines froze
// the tab for minutes, and again at every replay of the scrollback. A
// count above the terminal's rows does what the rows do, so LineClamp
// rewrites it to the rows before xterm.js parses it.

const ESC = 0x1b;
const LBRACKET = 0x5b;
const FINALS = new Set([0x53, 0x54, 0x4c, 0x4d]); // S T L M
// A sequence cut at a write's end is held for the next write when it is
// at most this long (ESC [ and the digits of a count); longer, it is
// nothing a terminal sends, and passes as it is.
const MAX_HELD = 24;
const encoder = new TextEncoder();

export class LineClamp {
  // rows returns the terminal's rows now.
  constructor(rows) {
    this.rows = rows;
    this.held = null;
  }

  // feed returns bytes with every such count above the rows rewritten to
  // them; a possible sequence at the end is held for the next feed.
  feed(bytes) {
    if (this.held) {
      const joined = new Uint8Array(this.held.length + bytes.length);
      joined.set(this.held);
      joined.set(bytes, this.held.length);
      bytes = joined;
      this.held = null;
    }
    let out = null; // parts, once something is rewritten or held
    let from = 0;
    for (let i = bytes.indexOf(ESC); i >= 0; i = bytes.indexOf(ESC, i + 1)) {
      if (i + 1 === bytes.length) {
        ({ out, from } = this.hold(bytes, i, out, from));
        break;
      }
      if (bytes[i + 1] !== LBRACKET) continue;
      let j = i + 2;
      let count = 0;
      while (j < bytes.length && bytes[j] >= 0x30 && bytes[j] <= 0x39) {
        count = Math.min(count * 10 + (bytes[j] - 0x30), 1e9);
        j++;
      }
      if (j === bytes.length) {
        if (j - i <= MAX_HELD) ({ out, from } = this.hold(bytes, i, out, from));
        break;
      }
      const rows = Math.max(1, this.rows());
      if (j === i + 2 || !FINALS.has(bytes[j]) || count <= rows) continue;
      out ??= [];
      out.push(bytes.subarray(from, i + 2), encoder.encode(String(rows)));
      from = j;
      i = j;
    }
    if (!out) return bytes;
    if (from < bytes.length && !this.held) out.push(bytes.subarray(from));
    return concat(out);
  }

  // drop forgets a sequence held: the output starts afresh (a reset).
  drop() {
    this.held = null;
  }

  hold(bytes, i, out, from) {
    this.held = bytes.slice(i);
    out ??= [];
    out.push(bytes.subarray(from, i));
    return { out, from: bytes.length };
  }
}

function concat(parts) {
  let n = 0;
  for (const p of parts) n += p.length;
  const all = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}
