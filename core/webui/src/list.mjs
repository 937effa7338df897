// The sessions list (#/): a table kept current by the events WebSocket
// (each event triggers a debounced refetch) and a refetch every 5 s for
// what events do not announce (clients, size, age).

import { api, backoff, ended, wsProtocols, wsURL } from './api.mjs';
import { joinWords } from './words.mjs';

const POLL_MS = 5000;
const DEBOUNCE_MS = 150;
const PAGE_LIMIT = 1000;
// Every running session is listed (up to LIVE_PAGES pages of them); of the
// ended ones, whose records stay for --retention, only the first
// ENDED_PAGES pages, with a note when there are more.
const LIVE_PAGES = 10;
const ENDED_PAGES = 1;
const LIVE = 'STARTING,ACTIVE,IDLE';
const ENDED = 'TERMINATED,ERROR';

export class SessionList {
  // scope: "full" or "read" (the read token: no restart, destroy or
  // write attach). onError(message) shows an error; '' clears it.
  constructor({ scope }) {
    this.scope = scope;
    this.tbody = document.querySelector('#sessions tbody');
    this.empty = document.getElementById('list-empty');
    this.more = document.getElementById('list-more');
    this.error = document.getElementById('list-error');
    this.running = false;
    this.events = null;
    this.eventsAttempt = 0;
    this.eventsTimer = 0;
    this.pollTimer = 0;
    this.debounceTimer = 0;
    this.fetching = null;
    this.again = false;
    this.tbody.addEventListener('click', (ev) => this.click(ev));
  }

  start() {
    if (this.running) return;
    this.running = true;
    this.refresh();
    this.openEvents();
  }

  stop() {
    this.running = false;
    clearTimeout(this.pollTimer);
    clearTimeout(this.debounceTimer);
    clearTimeout(this.eventsTimer);
    if (this.events) {
      const ws = this.events;
      this.events = null;
      if (ws.readyState === WebSocket.CONNECTING) ws.onopen = () => ws.close(1000, 'page left');
      else ws.close(1000, 'page left');
    }
  }

  // refresh fetches the list now; one fetch runs at a time, and a request
  // during it runs once more after it.
  refresh() {
    if (this.fetching) {
      this.again = true;
      return this.fetching;
    }
    clearTimeout(this.pollTimer);
    this.fetching = this.load()
      .catch((err) => {
        this.error.textContent = `Cannot list the sessions: ${err.message}`;
      })
      .finally(() => {
        this.fetching = null;
        if (!this.running) return;
        if (this.again) {
          this.again = false;
          this.refresh();
          return;
        }
        this.pollTimer = setTimeout(() => this.refresh(), POLL_MS);
      });
    return this.fetching;
  }

  refreshSoon() {
    clearTimeout(this.debounceTimer);
    this.debounceTimer = setTimeout(() => this.refresh(), DEBOUNCE_MS);
  }

  async load() {
    const live = await this.fetchPages(LIVE, LIVE_PAGES);
    const done = await this.fetchPages(ENDED, ENDED_PAGES);
    // While its database is unavailable the server lists only the
    // sessions it holds in memory, and says so.
    const partial = live.partial || done.partial;
    this.error.textContent = partial
      ? `Only the sessions the server holds in memory are listed: ${partial}`
      : '';
    this.more.hidden = !live.more && !done.more;
    // Running sessions first, then the ended ones; newest first in each:
    // the one just created is where the eye is.
    this.render([...live.sessions.reverse(), ...done.sessions.reverse()]);
  }

  // fetchPages lists the sessions in the given statuses, at most pages
  // pages of them; more says whether there were others, and partial, when
  // not empty, why a page held only the sessions in the server's memory.
  async fetchPages(status, pages) {
    const sessions = [];
    let cursor = '';
    let partial = '';
    for (let page = 0; page < pages; page++) {
      const q = new URLSearchParams({ status, limit: String(PAGE_LIMIT) });
      if (cursor) q.set('cursor', cursor);
      const res = await api('GET', 'api/v1/sessions?' + q);
      sessions.push(...(res.sessions || []));
      if (res.partial) partial = res.partial_reason || 'the database is unavailable';
      cursor = res.next_cursor || '';
      if (!cursor) break;
    }
    return { sessions, more: cursor !== '', partial };
  }

  render(sessions) {
    const now = Date.now();
    const keep = new Set();
    // The rows by id, looked up once each: a search of the rows per
    // session took 20 s for 10,000 sessions.
    const rows = new Map();
    for (const tr of this.tbody.children) rows.set(tr.dataset.sessionId, tr);
    sessions.forEach((s, i) => {
      keep.add(s.id);
      let tr = rows.get(s.id);
      if (!tr) tr = this.newRow(s.id);
      this.fill(tr, s, now);
      // Move a row only when it is out of place: moving the row that
      // holds the focused button would take the focus away.
      if (this.tbody.children[i] !== tr) this.tbody.insertBefore(tr, this.tbody.children[i] || null);
    });
    for (const tr of [...this.tbody.children]) {
      if (!keep.has(tr.dataset.sessionId)) tr.remove();
    }
    this.empty.hidden = sessions.length > 0;
  }

  newRow(id) {
    const tr = document.createElement('tr');
    tr.dataset.sessionId = id;
    for (const cls of ['id', 'env', 'command', 'status', 'clients', 'size', 'age']) {
      const td = document.createElement(cls === 'id' ? 'th' : 'td');
      if (cls === 'id') td.scope = 'row';
      td.className = cls;
      tr.append(td);
    }
    const actions = document.createElement('td');
    actions.className = 'actions';
    const buttons = [
      ['attach', 'Attach', 'Attach to session'],
      ['watch', 'Watch', 'Watch session read-only'],
      ['restart', 'Restart', 'Restart the program of session'],
      ['destroy', 'Destroy', 'Destroy session'],
    ];
    for (const [cls, label, aria] of buttons) {
      if (this.scope === 'read' && cls !== 'watch') continue;
      const b = document.createElement('button');
      b.type = 'button';
      b.className = cls;
      b.textContent = label;
      b.setAttribute('aria-label', `${aria} ${id}`);
      actions.append(b);
    }
    tr.append(actions);
    return tr;
  }

  fill(tr, s, now) {
    const set = (cls, text, title) => {
      const td = tr.querySelector('.' + cls);
      if (td.textContent !== text) td.textContent = text;
      if (title !== undefined && td.title !== title) td.title = title;
    };
    set('id', s.id, s.id);
    set('env', s.environment_id);
    const command = s.command && s.command.length ? joinWords(s.command) : '(shell)';
    set('command', command, s.worktree_path ? `${command}\nin ${s.worktree_path}` : command);
    set('status', s.status, s.status_reason || '');
    set('clients', String(s.active_connections ?? 0));
    set('size', `${s.cols}×${s.rows}`);
    set('age', age(now - Date.parse(s.created_at)), s.created_at);
    tr.querySelector('.status').dataset.status = s.status;
    const over = ended(s);
    tr.classList.toggle('ended', over);
    for (const b of tr.querySelectorAll('button')) b.disabled = over;
  }

  async click(ev) {
    const button = ev.target.closest('button');
    if (!button || !this.tbody.contains(button)) return;
    const id = button.closest('tr').dataset.sessionId;
    const path = 'api/v1/sessions/' + encodeURIComponent(id);
    try {
      switch (button.className) {
        case 'attach':
          location.hash = '#/s/' + encodeURIComponent(id);
          return;
        case 'watch':
          location.hash = '#/s/' + encodeURIComponent(id) + '?mode=read';
          return;
        case 'restart':
          button.disabled = true;
          await api('POST', path + '/restart', {});
          break;
        case 'destroy':
          if (!confirm(`Destroy session ${id}? Its program is killed.`)) return;
          button.disabled = true;
          await api('DELETE', path);
          break;
        default:
          return;
      }
      this.error.textContent = '';
    } catch (err) {
      this.error.textContent = `${button.textContent} ${id}: ${err.message}`;
      button.disabled = false;
    }
    this.refreshSoon();
  }

  // openEvents keeps the events WebSocket open while the list shows,
  // reconnecting with backoff; every (re)connect refetches, since events
  // may have been missed while it was down.
  openEvents() {
    if (!this.running) return;
    const ws = new WebSocket(wsURL('api/v1/events'), wsProtocols('ptyhost.events.v1'));
    this.events = ws;
    ws.onopen = () => {
      this.eventsAttempt = 0;
      this.refreshSoon();
    };
    ws.onmessage = () => this.refreshSoon();
    ws.onclose = () => {
      if (this.events !== ws) return;
      this.events = null;
      if (!this.running) return;
      this.eventsTimer = setTimeout(() => this.openEvents(), backoff(this.eventsAttempt++));
    };
  }
}

// age formats a duration in ms the way ps does: the largest unit.
export function age(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}
