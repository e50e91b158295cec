/*
 * The status page's stylesheet and script, served from memory (`/status-page/page.css`,
 * `/status-page/page.js`): no CDN, no build step, and they travel inside a bundled `promoter`.
 * The script is small and plain: it polls the server-rendered view, swaps it in when it changed
 * (keeping keyboard focus where it was), announces what changed in a polite live region, and
 * sends the approve and freeze requests of the buttons.
 */

export const PAGE_CSS = `
:root {
  color-scheme: light dark;
  --bg: #ffffff; --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --panel: #f6f8fa;
  --link: #0550ae; --focus: #0969da;
  --good-bg: #dafbe1; --good-fg: #116329; --active-bg: #ddf4ff; --active-fg: #0a3069;
  --wait-bg: #fff8c5; --wait-fg: #6c4400; --bad-bg: #ffebe9; --bad-fg: #a40e26;
  --muted-bg: #eaeef2; --muted-fg: #424a53;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #9da7b3; --line: #3d444d; --panel: #161b22;
    --link: #79c0ff; --focus: #58a6ff;
    --good-bg: #0f3d1f; --good-fg: #a6f0b8; --active-bg: #0c2d4d; --active-fg: #b6e3ff;
    --wait-bg: #3d2e00; --wait-fg: #f8e08e; --bad-bg: #4c0e14; --bad-fg: #ffc1c0;
    --muted-bg: #262c36; --muted-fg: #c9d1d9;
  }
}
* { box-sizing: border-box; }
body { margin: 0; font: 16px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: var(--bg); color: var(--fg); }
header, main { padding: 0 1rem; max-width: 100rem; margin: 0 auto; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 0.25rem 1rem; }
h1 { font-size: 1.4rem; margin: 1rem 0 0.25rem; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 0.5rem; }
.app, .from, .at, .where, .none, #updated { color: var(--muted); font-size: 0.9em; }
a { color: var(--link); }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em;
  overflow-wrap: anywhere; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; min-width: 36rem; }
th, td { text-align: left; vertical-align: top; padding: 0.5rem 0.75rem;
  border-bottom: 1px solid var(--line); }
thead th { background: var(--panel); font-size: 1.05rem; }
tbody th { background: var(--panel); font-weight: 600; white-space: nowrap; width: 8rem; }
tbody tr:last-child th, tbody tr:last-child td { border-bottom: 0; }
ul, ol { margin: 0; padding-left: 1.1rem; }
.targets, .timeline { padding-left: 0; list-style: none; }
.state { display: inline-block; padding: 0 0.45rem; border-radius: 999px; font-size: 0.85em;
  font-weight: 600; border: 1px solid currentColor; }
.tone-good { background: var(--good-bg); color: var(--good-fg); }
.tone-active { background: var(--active-bg); color: var(--active-fg); }
.tone-wait { background: var(--wait-bg); color: var(--wait-fg); }
.tone-bad { background: var(--bad-bg); color: var(--bad-fg); }
.tone-muted { background: var(--muted-bg); color: var(--muted-fg); }
.ok { color: var(--good-fg); }
.failure, .error { color: var(--bad-fg); }
.error { background: var(--bad-bg); padding: 0.5rem 0.75rem; border-radius: 6px; }
.actions { display: flex; flex-wrap: wrap; gap: 0.4rem; }
button { font: inherit; font-size: 0.9rem; padding: 0.3rem 0.7rem; border-radius: 6px;
  border: 1px solid var(--line); background: var(--panel); color: var(--fg); cursor: pointer;
  min-height: 2.25rem; }
button.action-approve { background: var(--good-bg); color: var(--good-fg); border-color: currentColor; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
dialog { border: 1px solid var(--line); border-radius: 8px; background: var(--bg); color: var(--fg);
  max-width: min(30rem, calc(100vw - 2rem)); }
dialog label { display: block; margin: 0.75rem 0 0.25rem; font-weight: 600; }
dialog input { font: inherit; width: 100%; padding: 0.35rem; border: 1px solid var(--muted);
  border-radius: 4px; background: var(--bg); color: var(--fg); }
dialog menu { display: flex; flex-direction: row-reverse; gap: 0.5rem; justify-content: flex-start;
  padding: 0; margin: 1rem 0 0; }
#live:empty, #action-result:empty { display: none; }
#live, #action-result { margin: 0.5rem 0; }
#action-result { font-weight: 600; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden;
  clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; }
@media (max-width: 40rem) {
  body { font-size: 15px; }
  header, main { padding: 0 0.5rem; }
  th, td { padding: 0.4rem 0.5rem; }
  tbody th { width: auto; white-space: normal; }
  table { min-width: 28rem; }
}
`;

export const PAGE_SCRIPT = `'use strict';
(() => {
  const main = document.getElementById('pipelines');
  const live = document.getElementById('live');
  const result = document.getElementById('action-result');
  const updated = document.getElementById('updated');
  const dialog = document.getElementById('freeze-dialog');
  if (!main || !live || !updated || !result) return;
  const refreshMs = Number(main.dataset.refreshMs) || 3000;
  let timer;
  let busy = false;

  const summaries = () => {
    const found = new Map();
    for (const cell of main.querySelectorAll('[data-announce-key]')) {
      found.set(cell.dataset.announceKey, cell.dataset.announce);
    }
    return found;
  };

  const say = (text) => {
    live.textContent = text;
  };

  const swap = (html) => {
    if (html === main.innerHTML) return;
    const before = summaries();
    const focused = document.activeElement && document.activeElement.dataset
      ? document.activeElement.dataset.focusKey
      : undefined;
    main.innerHTML = html;
    if (focused) {
      const again = main.querySelector('[data-focus-key="' + CSS.escape(focused) + '"]');
      if (again) again.focus();
    }
    const changes = [];
    for (const [key, text] of summaries()) {
      if (before.get(key) !== text) changes.push(text);
    }
    if (changes.length > 0) say('Updated: ' + changes.join('; '));
  };

  const refresh = async () => {
    clearTimeout(timer);
    try {
      const response = await fetch('status-page/view', { headers: { accept: 'text/html' }, cache: 'no-store' });
      if (!response.ok) throw new Error('the server answered ' + response.status);
      swap(await response.text());
      updated.textContent = 'Updated ' + new Date().toLocaleTimeString();
    } catch (error) {
      updated.textContent = 'Could not refresh (' + error.message + '); trying again';
    } finally {
      timer = setTimeout(refresh, refreshMs);
    }
  };

  const send = async (path, body, done) => {
    if (busy) return;
    busy = true;
    try {
      const response = await fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-promoter-ui': '1' },
        body: JSON.stringify(body),
      });
      let answer = {};
      try { answer = await response.json(); } catch {}
      result.textContent = response.ok
        ? done
        : 'Refused (' + response.status + '): ' + (answer.error || answer.message || 'no reason given');
    } catch (error) {
      result.textContent = 'Could not reach the server: ' + error.message;
    } finally {
      busy = false;
      await refresh();
    }
  };

  const segment = encodeURIComponent;
  const scopeOf = (data) => {
    const scope = {};
    if (data.pipeline) scope.pipeline = data.pipeline;
    if (data.environment) scope.environment = data.environment;
    return scope;
  };
  let freezing;

  main.addEventListener('click', (event) => {
    const target = event.target instanceof Element ? event.target.closest('button[data-action]') : null;
    if (!target) return;
    const data = target.dataset;
    if (data.action === 'approve') {
      const [namespace, name] = data.pipeline.split('/');
      void send(
        'pipelines/' + segment(namespace) + '/' + segment(name) + '/environments/' + segment(data.environment) + '/approval',
        data.revision ? { revision: data.revision } : {},
        'Approved ' + (data.revision || '') + ' into ' + data.environment + ' of ' + data.pipeline,
      );
    } else if (data.action === 'unfreeze') {
      void send('unfreeze', scopeOf(data), 'Unfrozen: ' + target.textContent.replace(/^Unfreeze /, ''));
    } else if (data.action === 'freeze' && dialog) {
      freezing = { scope: scopeOf(data), opener: target.dataset.focusKey };
      dialog.querySelector('#freeze-scope').textContent = data.scope || '';
      dialog.querySelector('form').reset();
      dialog.returnValue = '';
      dialog.showModal();
    }
  });

  if (dialog) {
    dialog.addEventListener('close', () => {
      const request = freezing;
      freezing = undefined;
      if (request && request.opener) {
        const opener = main.querySelector('[data-focus-key="' + CSS.escape(request.opener) + '"]');
        if (opener) opener.focus();
      }
      if (!request || dialog.returnValue !== 'freeze') return;
      const form = dialog.querySelector('form');
      const reason = form.elements.reason.value.trim();
      const until = form.elements.until.value;
      const body = { ...request.scope, reason };
      if (until) body.until = new Date(until).toISOString();
      void send('freeze', body, 'Frozen: ' + (dialog.querySelector('#freeze-scope').textContent || ''));
    });
  }

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) void refresh();
  });
  timer = setTimeout(refresh, refreshMs);
})();
`;
