'use strict';
/*
 * The supervisor view: every seat and queue live, and listen / whisper /
 * barge on a seat's call. The supervisor logs in their own browser seat:
 * a monitor request rings it, and this page answers at once, so what the
 * supervisor hears and says goes through the same WebRTC audio as an
 * agent's call.
 */
(() => {
  const { $, el, enc, api, state } = Desk;

  const MODES = { listen: '监听', whisper: '耳语', barge: '强插' };
  const MONITOR_WORDS = { listen: '正在监听', whisper: '正在耳语', barge: '已强插' };

  /**
   * Seats by id, as the board and the events last described them. `call`
   * there is the ACD's number for the call (what `/api/v1/seats` and the
   * `state` events carry); `callerCall` is the caller's call id, which
   * `/api/v1/calls/{id}/monitor` wants, learnt from the `offered` and
   * `connected` events of the seat.
   */
  const seats = new Map();
  /** The call being supervised: `{call, seat, mode}`, or null. */
  let monitor = null;
  /** Whether this page's own seat leg is up (the monitor audio). */
  let legUp = false;

  const socket = new Desk.SeatSocket({
    ring: onRing,
    connected: (msg) => {
      if (msg.call !== state.call) return;
      legUp = true;
      if (monitor) showMonitor('active');
    },
    ended: (msg) => {
      if (msg.call !== state.call) return;
      endLeg(Desk.ENDED_LABELS[msg.reason] || msg.reason);
    },
    error: (msg) => {
      const text = Desk.SOCKET_ERRORS[msg.code] || msg.message || msg.code;
      if (msg.code === 'replaced') $('login-error').textContent = text;
      Desk.notify(`服务器：${text}`, true);
    },
    link: (how) => {
      Desk.showLink(how);
      if (how !== 'connected' && state.call) endLeg('连接中断');
      if (how === 'closed') {
        $('desk').hidden = true;
        $('login-view').hidden = false;
      }
    },
  });

  Desk.loginForm(socket, (welcome) => {
    $('me-seat').textContent = welcome.seat;
    $('me-name').textContent = welcome.name && welcome.name !== welcome.seat ? welcome.name : '';
    refreshSeats();
    refreshQueues();
    Desk.floorEvents(onFloorEvent, (up) => {
      $('events-state').textContent = up ? '实时事件：已连接' : '实时事件：重连中…';
    });
    // The events keep the table live; the periodic reads catch seats
    // added or removed and whatever a dropped event stream missed.
    setInterval(refreshSeats, 5000);
    setInterval(refreshQueues, 3000);
  });

  // ---- The supervisor's own leg -------------------------------------------

  /**
   * A ring on this seat is a monitor request being carried out: answered
   * at once, with the same WebRTC answer as the agent desktop.
   */
  async function onRing(msg) {
    state.call = msg.call;
    state.callerCallId = msg.caller_call_id;
    legUp = false;
    if (monitor) showMonitor('requested');
    try {
      const sdp = await Desk.answerOffer(msg.sdp, $('remote-audio'));
      if (state.call !== msg.call) return;
      socket.send({ type: 'sdp', call: msg.call, sdp });
      socket.send({ type: 'answer', call: msg.call });
    } catch (err) {
      Desk.notify(`音频协商失败：${err.message}`, true);
      socket.send({ type: 'reject', call: msg.call });
    }
  }

  function endLeg(why) {
    Desk.closePeer();
    state.call = null;
    legUp = false;
    if (monitor) {
      monitor = null;
      showMonitor('idle', `监控已结束${why ? `（${why}）` : ''}`);
      renderAll();
    }
  }

  // ---- Monitoring ---------------------------------------------------------------

  function showMonitor(stateWord, text) {
    const node = $('monitor-state');
    node.dataset.state = stateWord;
    node.dataset.mode = monitor ? monitor.mode : '';
    node.dataset.call = monitor ? monitor.call : '';
    if (text === undefined && monitor) {
      const who = `坐席 ${monitor.seat}`;
      text = stateWord === 'active'
        ? `${MONITOR_WORDS[monitor.mode]} · ${who}`
        : `正在呼叫班长坐席以${MODES[monitor.mode]} · ${who}…`;
    }
    node.textContent = text || '未在监控通话';
    $('btn-monitor-stop').disabled = !monitor;
  }

  /**
   * POST /api/v1/calls/{id}/monitor: rings this seat into the call in
   * `mode`, or switches the mode of a supervision already going on. A
   * different call is let go of first: a supervisor is on one call at a
   * time.
   */
  async function startMonitor(call, seatId, mode) {
    if (monitor && monitor.call !== call) await stopMonitor();
    const previous = monitor;
    monitor = { call, seat: seatId, mode };
    showMonitor(previous && legUp ? 'active' : 'requested');
    const r = await api('POST', `/api/v1/calls/${enc(call)}/monitor`, { supervisor: state.seat, mode });
    if (!r.ok) {
      monitor = previous;
      showMonitor('error', `${MODES[mode]}失败：${r.error}`);
      $('btn-monitor-stop').disabled = !monitor;
      return;
    }
    showMonitor(legUp ? 'active' : 'requested');
    renderAll();
  }

  async function stopMonitor() {
    if (!monitor) return;
    const { call } = monitor;
    const r = await api('DELETE', `/api/v1/calls/${enc(call)}/monitor`);
    monitor = null;
    // A call that already ended has no supervisor to take off: that is done too.
    if (r.ok || r.status === 404) showMonitor('idle', '监控已结束');
    else showMonitor('error', `结束监控失败：${r.error}`);
    renderAll();
  }

  $('btn-monitor-stop').addEventListener('click', stopMonitor);

  // One listener for every row's buttons: rows are redrawn as seats change.
  $('seats').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-monitor]');
    if (button) startMonitor(button.dataset.call, button.dataset.seat, button.dataset.monitor);
  });

  // ---- Seats ------------------------------------------------------------------------

  function onFloorEvent(ev) {
    switch (ev.event) {
      case 'snapshot':
        if (ev.seat) mergeSeat(ev.seat.seat, ev.seat);
        break;
      case 'state':
        mergeSeat(ev.seat, { status: ev.status, reason: ev.reason, state: ev.state, call: ev.call });
        break;
      case 'offered':
        // The queue shows next to the call; the number stays off the wall.
        mergeSeat(ev.seat, { queue: ev.queue, callerCall: ev.call_id });
        break;
      case 'connected':
        mergeSeat(ev.seat, { callerCall: ev.call_id });
        break;
      default:
        break;
    }
  }

  /** Updates a seat with `fields` and redraws its row. */
  function mergeSeat(id, fields) {
    if (!id) return;
    const seat = { ...(seats.get(id) || { seat: id }), ...fields };
    // A status without a reason, or an activity without a call, clears them.
    if ('status' in fields && !fields.reason) seat.reason = null;
    if ('state' in fields && !fields.call) {
      seat.call = null;
      seat.queue = null;
      seat.callerCall = null;
    }
    seats.set(id, seat);
    renderRow(seat);
    countSeats();
  }

  async function refreshSeats() {
    const r = await api('GET', '/api/v1/seats');
    if (!r.ok) {
      Desk.notify(`坐席列表：${r.error}`, true);
      return;
    }
    const listed = new Set();
    for (const s of r.json.seats || []) {
      listed.add(s.seat);
      // What only the events tell (the queue, the caller's call id) is
      // kept while the seat is still on the same call.
      const before = seats.get(s.seat) || {};
      const same = before.call != null && before.call === s.call;
      seats.set(s.seat, {
        ...s,
        queue: same ? before.queue : null,
        // The board names the caller's call; events fill it in between reads.
        callerCall: s.caller_call_id || (same ? before.callerCall : null),
        reason: s.reason || null,
        call: s.call ?? null,
      });
    }
    for (const id of [...seats.keys()]) if (!listed.has(id)) seats.delete(id);
    renderAll();
  }

  function renderAll() {
    const body = $('seats').tBodies[0];
    const ids = [...seats.keys()].sort();
    for (const row of [...body.rows]) if (!seats.has(row.dataset.seat)) row.remove();
    for (const id of ids) body.append(renderRow(seats.get(id)));
    countSeats();
  }

  function countSeats() {
    const working = [...seats.values()].filter((s) => s.status && s.status !== 'logged_out').length;
    $('seat-count').textContent = `（${working} / ${seats.size} 在岗）`;
  }

  /**
   * The seat's `tr[data-seat]`, redrawn only when what it shows changed
   * (a button under the pointer is not replaced for nothing).
   */
  function renderRow(seat) {
    const body = $('seats').tBodies[0];
    let row = body.querySelector(`tr[data-seat="${CSS.escape(seat.seat)}"]`);
    const mine = seat.seat === state.seat;
    const watched = monitor && seat.callerCall && monitor.call === seat.callerCall ? monitor.mode : '';
    const view = JSON.stringify([seat.name, seat.status, seat.reason, seat.state, seat.call, seat.callerCall,
      seat.queue, seat.calls_taken, seat.talk_secs, mine, watched]);
    if (row && row.dataset.view === view) return row;
    if (!row) {
      // A new seat goes into its place in id order.
      row = el('tr', { 'data-seat': seat.seat });
      const after = [...body.rows].find((r) => r.dataset.seat > seat.seat);
      body.insertBefore(row, after || null);
    }
    row.dataset.view = view;
    const word = Desk.seatWord(seat);
    row.dataset.status = word;
    if (mine) row.dataset.mine = '';
    else delete row.dataset.mine;
    const actions = el('td', { class: 'actions' });
    // The buttons need the caller's call id: the ACD's number for the call
    // is not one the call API knows. A call that began before this page
    // opened has none here (the seats API does not give it), so it gets no
    // buttons rather than ones that can only fail.
    if (!mine && seat.state === 'in_call' && seat.callerCall) {
      for (const [mode, label] of Object.entries(MODES)) {
        actions.append(el('button', {
          type: 'button',
          'data-monitor': mode,
          'data-call': seat.callerCall,
          'data-seat': seat.seat,
          'aria-pressed': watched === mode ? 'true' : 'false',
          text: label,
        }), ' ');
      }
    }
    if (!mine && seat.state === 'in_call' && !seat.callerCall) {
      actions.append(el('span', { class: 'muted', text: '通话早于本页打开，无法监控' }));
    }
    const callText = seat.callerCall || (seat.call != null ? String(seat.call) : '');
    row.replaceChildren(
      el('td', { text: seat.seat }),
      el('td', { text: seat.name || '' }),
      el('td', {}, el('span', { class: 'status', 'data-status': word, text: Desk.seatLabel(seat) })),
      el('td', { title: callText, text: callText ? `${shortCall(callText)}${seat.queue ? ` · ${seat.queue}` : ''}` : '' }),
      el('td', { class: 'num', text: String(seat.calls_taken ?? 0) }),
      el('td', { class: 'num', text: Desk.duration(seat.talk_secs || 0) }),
      actions,
    );
    return row;
  }

  /** Call-IDs are long; the start is enough to tell calls apart on screen. */
  function shortCall(id) {
    id = String(id);
    return id.length > 14 ? `${id.slice(0, 12)}…` : id;
  }

  // ---- Queues ----------------------------------------------------------------------------

  async function refreshQueues() {
    const r = await api('GET', '/api/v1/queues');
    if (!r.ok) return;
    const body = $('queues').tBodies[0];
    body.replaceChildren(...(r.json.queues || []).map((q) => {
      const row = el('tr', { 'data-queue': q.name },
        el('td', { text: q.name }),
        el('td', { class: 'num waiting', text: String(q.waiting) }),
        el('td', { class: 'num', text: q.waiting ? Desk.duration(q.longest_wait_secs || 0) : '–' }));
      if (q.waiting > 0) row.classList.add('busy');
      return row;
    }));
    if (!body.rows.length) body.append(el('tr', {}, el('td', { colspan: 3, class: 'muted', text: '没有队列' })));
  }
})();
