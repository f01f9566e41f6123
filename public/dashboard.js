// The dashboard: renders /dashboard/data (refreshed every 2 s) and the live event stream (SSE).
// Built with DOM methods and textContent only, so nothing from the wire is ever parsed as HTML.
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, props = {}, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) {
      if (k === 'class') e.className = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? '')));
    return e;
  };
  const clock = (iso) => new Date(iso).toISOString().slice(11, 23);
  const fmtBytes = (n) => (n > 1048576 ? `${(n / 1048576).toFixed(1)} MiB` : n > 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`);
  const STATUSES = ['created', 'payment_pending', 'paid', 'payment_declined', 'shipped'];

  function eventRow(e) {
    const what = e.order_id ? el('a', { href: `/orders/${e.order_id}` }, e.summary) : e.summary;
    return el('li', {}, el('time', { datetime: e.occurred_at }, clock(e.occurred_at)), el('code', {}, e.subject), el('span', {}, what));
  }

  function chart(series) {
    const svg = $('chart');
    const max = Math.max(1, ...series.flatMap((p) => [p.created_per_s, p.shipped_per_s]));
    const line = (key) => series.map((p, i) => `${(i / (series.length - 1)) * 300},${78 - (p[key] / max) * 74}`).join(' ');
    const NS = 'http://www.w3.org/2000/svg';
    const poly = (cls, pts) => {
      const p = document.createElementNS(NS, 'polyline');
      p.setAttribute('class', cls);
      p.setAttribute('points', pts);
      return p;
    };
    const label = document.createElementNS(NS, 'text');
    label.setAttribute('x', '4');
    label.setAttribute('y', '12');
    label.setAttribute('font-size', '9');
    label.textContent = `max ${max.toFixed(1)}/s`;
    svg.replaceChildren(poly('created', line('created_per_s')), poly('shipped', line('shipped_per_s')), label);
  }

  function render(d) {
    $('updated').textContent = `updated ${clock(d.at)}`;
    $('status-counts').replaceChildren(
      ...STATUSES.map((s) => el('div', {}, el('strong', { 'data-status': s }, d.orders.by_status[s] ?? 0), el('span', { class: `status status-${s}` }, s.replace('_', ' ')))),
      el('div', {}, el('strong', {}, d.orders.total), 'total'),
    );
    const e2e = d.orders.end_to_end_ms;
    $('e2e').textContent = e2e.samples ? `p50 ${e2e.p50} ms · p99 ${e2e.p99} ms (${e2e.samples} orders)` : 'no shipped orders yet';
    chart(d.orders.throughput);
    $('payments-instances').textContent = d.payments_service.instances;
    $('workers').replaceChildren(
      ...d.workers.map((w) => el('tr', {}, el('td', {}, w.instance ?? w.name), el('td', {}, w.host), el('td', {}, w.pid), el('td', {}, `${Math.round(w.last_seen_ms / 1000)} s ago`), el('td', { class: w.status }, w.status))),
    );
    $('streams').replaceChildren(
      ...d.streams.flatMap((s) => [
        el('tr', {}, el('td', {}, el('strong', {}, s.name)), el('td', {}, s.subjects.join(' ')), el('td', { class: 'num' }, s.messages), el('td', { class: 'num' }, fmtBytes(s.bytes)), el('td', { class: 'num' }, s.first_seq), el('td', { class: 'num' }, s.last_seq), el('td'), el('td'), el('td'), el('td')),
        ...s.consumers.map((c) =>
          el('tr', { class: 'consumer' }, el('td', {}, `↳ ${c.name}`), el('td'), el('td'), el('td'), el('td'), el('td', { class: 'num' }, c.delivered_seq), el('td', { class: 'num' }, c.pending), el('td', { class: 'num' }, c.ack_pending), el('td', { class: 'num' }, c.redelivered), el('td', { class: 'num' }, c.waiting)),
        ),
      ]),
    );
    $('dlq-count').textContent = d.dlq.total;
    $('dlq-count').className = d.dlq.total ? 'count' : 'count zero';
    $('dlq').replaceChildren(
      ...d.dlq.items.map((x) =>
        el(
          'tr',
          {},
          el('td', {}, el('a', { href: '#', onclick: (ev) => (ev.preventDefault(), show(x.seq)) }, `#${x.seq}`)),
          el('td', {}, x.consumer),
          el('td', {}, el('code', {}, x.subject)),
          el('td', {}, x.error),
          el('td', {}, x.retryable ? el('button', { type: 'button', class: 'small', onclick: () => retry(x.seq) }, 'Retry') : ''),
        ),
      ),
    );
  }

  // Every POST carries the page's CSRF token: the session cookie alone is not enough.
  const csrf = $('csrf-token').value;
  const post = (url, body) =>
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json', 'x-csrf-token': csrf }, body: JSON.stringify(body ?? {}) });

  async function refresh() {
    try {
      const r = await fetch('/dashboard/data', { headers: { Accept: 'application/json' } });
      if (r.ok) render(await r.json());
    } catch {
      /* the web app may be restarting */
    }
  }
  async function show(seq) {
    const r = await fetch(`/dashboard/dlq/${seq}`, { headers: { accept: 'application/json' } });
    const d = await r.json();
    $('dlq-detail').hidden = false;
    $('dlq-detail').textContent = JSON.stringify(d, null, 2);
  }
  // A retry says what happened to it (retried where, not found, not retryable, refused).
  const outcome = async (r) => {
    const d = await r.json().catch(() => ({}));
    $('dlq-result').textContent = d.message ?? `${r.status} ${d.error ?? ''}`;
    $('dlq-result').className = r.ok ? 'result ok' : 'result failed';
  };
  async function retry(seq) {
    await outcome(await post(`/dashboard/dlq/${seq}/retry`));
    refresh();
  }
  $('dlq-retry-all').addEventListener('click', async () => {
    await outcome(await post('/dashboard/dlq/retry-all'));
    refresh();
  });

  function tool(id, url, body) {
    $(id).addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const out = $(id).querySelector('output');
      out.textContent = '…';
      const r = await post(url, body(new FormData($(id))));
      out.textContent = JSON.stringify(await r.json(), null, 2);
      setTimeout(refresh, 300);
    });
  }
  tool('tool-publish', '/dashboard/tools/publish', (f) => ({ subject: f.get('subject'), payload: f.get('payload'), inject: f.get('inject') === 'true' }));
  tool('tool-request', '/dashboard/tools/request', (f) => ({ subject: f.get('subject'), payload: f.get('payload') }));
  tool('tool-job', '/dashboard/tools/job', (f) => ({ message: f.get('message'), delay_ms: Number(f.get('delay_ms') || 0), fail: f.get('fail') === 'true' }));

  const initial = JSON.parse($('initial-data').textContent);
  render(initial);
  $('events').replaceChildren(...initial.events.map(eventRow));

  const source = new EventSource('/dashboard/stream');
  source.addEventListener('open', () => ($('live-state').textContent = 'live'));
  source.addEventListener('error', () => ($('live-state').textContent = 'reconnecting…'));
  // Events come in batches, oldest first; under a flood the server sends the newest 50 and counts the rest.
  source.addEventListener('events', (m) => {
    const { events, skipped } = JSON.parse(m.data);
    const feed = $('events');
    for (const e of events) feed.prepend(eventRow(e));
    while (feed.children.length > 50) feed.lastChild.remove();
    $('live-state').textContent = skipped ? `live (${skipped} more events than shown)` : 'live';
  });
  setInterval(refresh, 2000);
})();
