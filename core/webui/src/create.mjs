// The create form: environment picker, command, working directory. On
// success the page goes to the new session's terminal.

import { api } from './api.mjs';
import { splitWords } from './words.mjs';

export class CreateForm {
  constructor() {
    this.form = document.getElementById('create-form');
    this.env = document.getElementById('create-env');
    this.command = document.getElementById('create-command');
    this.cwd = document.getElementById('create-cwd');
    this.submit = document.getElementById('create-submit');
    this.error = document.getElementById('create-error');
    this.form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      this.create();
    });
  }

  // loadEnvironments fills the picker, keeping the current choice.
  async loadEnvironments() {
    let res;
    try {
      res = await api('GET', 'api/v1/environments');
    } catch (err) {
      this.error.textContent = `Cannot list the environments: ${err.message}`;
      return;
    }
    const chosen = this.env.value;
    const options = (res.environments || []).map((e) => {
      const o = document.createElement('option');
      o.value = e.id;
      o.textContent = e.name && e.name !== e.id ? `${e.name} (${e.id})` : e.id;
      return o;
    });
    this.env.replaceChildren(...options);
    if (options.some((o) => o.value === chosen)) this.env.value = chosen;
    this.submit.disabled = options.length === 0;
    this.error.textContent = options.length ? '' : 'No environment to create a session in: add one first (POST /api/v1/environments).';
  }

  async create() {
    this.error.textContent = '';
    let command;
    try {
      command = splitWords(this.command.value);
    } catch (err) {
      this.error.textContent = `Command: ${err.message}`;
      this.command.focus();
      return;
    }
    const body = { environment_id: this.env.value, ...terminalSize() };
    // An empty command is the environment's shell: leave it out.
    if (command.length) body.command = command;
    const cwd = this.cwd.value.trim();
    if (cwd) body.worktree_path = cwd;
    this.submit.disabled = true;
    try {
      const session = await api('POST', 'api/v1/sessions', body);
      location.hash = '#/s/' + encodeURIComponent(session.id);
    } catch (err) {
      this.error.textContent = err.message;
    } finally {
      this.submit.disabled = false;
    }
  }
}

// terminalSize guesses the size the terminal view will have, so that the
// program starts at about its final size (the view's fit corrects it on
// attach): the window less the view's bars, in cells of the terminal's font.
function terminalSize() {
  const probe = document.createElement('span');
  probe.className = 'cell-probe';
  probe.textContent = 'W'.repeat(10);
  document.body.append(probe);
  const rect = probe.getBoundingClientRect();
  probe.remove();
  const cellW = rect.width / 10;
  const cellH = rect.height;
  if (!(cellW > 0 && cellH > 0)) return { cols: 80, rows: 24 };
  const clamp = (n) => Math.max(1, Math.min(1000, Math.floor(n)));
  return {
    cols: clamp((window.innerWidth - 24) / cellW),
    rows: clamp((window.innerHeight - 110) / cellH),
  };
}
