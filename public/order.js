// Follows an order on its page until it reaches a final state: asks for the order's JSON and
// updates status, times, payment and timeline in place. No reload, no inline script (CSP).
(() => {
  const card = document.getElementById('order');
  // Even an order that is already final may be missing its last timeline row: follow it until that arrives.
  if (!card) return;
  const field = (name) => document.querySelector(`[data-field="${name}"]`);
  const time = (t) => (t ? `${t.replace('T', ' ').slice(0, 19)} UTC` : '—');
  const text = (name, value) => {
    const el = field(name);
    if (el) el.textContent = value;
  };
  const cell = (tag, value) => {
    const el = document.createElement(tag);
    el.textContent = value;
    return el;
  };

  function render(o) {
    const status = field('status');
    status.textContent = o.status.replace('_', ' ');
    status.className = `status status-${o.status}`;
    text('paid_at', time(o.paid_at));
    text('shipped_at', time(o.shipped_at));
    const p = o.payment_response;
    text('payment', p ? (p.approved ? `approved · ${p.transaction_id}` : `declined · ${p.reason ?? ''}`) : 'not answered yet');
    field('pending').hidden = o.status !== 'payment_pending';
    text('payment_error', o.payment_error ?? '');
    text('payment_attempts', String(o.payment_attempts));
    const rows = o.timeline.map((e) => {
      const tr = document.createElement('tr');
      const code = cell('code', e.subject);
      const td = document.createElement('td');
      td.append(code);
      tr.append(cell('td', time(e.occurred_at)), td, cell('td', e.summary));
      return tr;
    });
    field('timeline').replaceChildren(...rows);
  }

  // Live: the server pushes a message whenever an event about this order is published; the page
  // then reads the order again (status, times and the recorded timeline). A slow poll covers a
  // dropped stream; both stop a few seconds after the order is final.
  let finalAt = 0;
  let complete = false;
  const FINAL_EVENT = { shipped: 'orders.shipped', payment_declined: 'orders.declined' };
  async function refresh() {
    try {
      const res = await fetch(location.pathname, { headers: { Accept: 'application/json' } });
      if (!res.ok) return;
      const o = await res.json();
      render(o);
      if (o.final && !finalAt) finalAt = Date.now();
      // Done once the final event is on the timeline too (the activity worker records it a moment later).
      complete = o.final && o.timeline.some((e) => e.subject === FINAL_EVENT[o.status]);
    } catch {
      // The server may be restarting; the next message or poll tries again.
    }
  }
  const source = new EventSource(`${location.pathname}/stream`);
  source.addEventListener('order-event', () => {
    refresh();
    // The activity worker records the timeline row a moment after the event.
    setTimeout(refresh, 400);
  });
  const poll = setInterval(() => {
    if (complete || (finalAt && Date.now() - finalAt > 30_000)) {
      clearInterval(poll);
      source.close();
      text('live', '');
      return;
    }
    // Quickly while the last timeline row is due, slowly while the order waits for a worker.
    if (finalAt || Date.now() % 3000 < 1000) refresh();
  }, 1000);
  refresh();
})();
