// Follows an order on its page until it reaches a final state: asks for the order's JSON and
// updates status, times, payment and timeline in place. No reload, no inline script (CSP).
(() => {
  const card = document.getElementById('order');
  if (!card || card.dataset.final === 'true') return;
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

  let quietPolls = 0;
  async function poll() {
    try {
      const res = await fetch(location.pathname, { headers: { Accept: 'application/json' } });
      if (res.ok) {
        const o = await res.json();
        render(o);
        // Keep going a little after the final state so the last timeline rows arrive too.
        if (o.final && ++quietPolls > 3) {
          text('live', '');
          return;
        }
      }
    } catch {
      // The server may be restarting; try again.
    }
    setTimeout(poll, 700);
  }
  setTimeout(poll, 300);
})();
