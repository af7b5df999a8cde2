'use strict';
/*
 * The agent desktop: the seat's status, the incoming call with its screen
 * pop and audio, one-click three-way calls and transfers, the work-order
 * form of the call, and the knowledge base with direct answers.
 *
 * The call's signalling and audio go over the seat socket (Desk.SeatSocket);
 * everything else is the REST API with the socket's token.
 */
(() => {
  const { $, el, enc, api, state } = Desk;

  const socket = new Desk.SeatSocket({
    ring: onRing,
    connected: onConnected,
    held: onHeld,
    ended: onEnded,
    event: (msg) => onSeatEvent(msg.event || {}),
    error: onSocketError,
    link: onLink,
  });

  /** The seat as the ACD last described it. */
  let seat = { status: 'logged_out', reason: null, state: 'idle', call: null };
  /** The current call on this page: `ringing`, `connected`, `held`, `ended`. */
  let callState = null;
  /** When the call was answered and when it ended (ms), for the talk timer. */
  let connectedAt = null;
  let endedAt = null;
  /** Screen-pop data (`offered` events) by the caller's call id. */
  const offers = new Map();
  /**
   * The call the order form files against: the last call rung, kept after
   * it ends (the agent writes up after hanging up) until a new one rings.
   */
  let order = { call: null, phone: '', filed: null, key: null };
  let catalogue = null;

  // ---- Log-in ----------------------------------------------------------

  Desk.loginForm(socket, (welcome) => {
    $('me-seat').textContent = welcome.seat;
    $('me-name').textContent = welcome.name && welcome.name !== welcome.seat ? welcome.name : '';
    Desk.notify('');
    loadCatalogue();
    loadDirectory();
  });

  function onLink(how) {
    Desk.showLink(how);
    if (how === 'connected') return;
    // The server hangs up a call whose seat socket went away.
    if (state.call) endCall('连接中断');
    if (how === 'closed') {
      $('desk').hidden = true;
      $('login-view').hidden = false;
    }
  }

  function onSocketError(msg) {
    const text = Desk.SOCKET_ERRORS[msg.code] || msg.message || msg.code;
    if (msg.code === 'replaced') $('login-error').textContent = text;
    Desk.notify(`服务器：${text}`, true);
  }

  // ---- Seat status -------------------------------------------------------

  /** Shows a seat view (snapshot, state event or REST reply). */
  function showSeat(view) {
    seat = {
      status: view.status || 'logged_out',
      reason: view.reason || null,
      state: view.state || 'idle',
      call: view.call || null,
    };
    const node = $('seat-status');
    node.dataset.status = Desk.seatWord(seat);
    node.dataset.activity = seat.state;
    node.dataset.seatStatus = seat.status;
    node.textContent = Desk.seatLabel(seat);
  }

  /** One of the agent's own buttons: POST /api/v1/seats/{seat}/{action}. */
  async function seatAction(action, body) {
    const r = await api('POST', `/api/v1/seats/${enc(state.seat)}/${action}`, body);
    if (r.ok) {
      showSeat(r.json);
      Desk.notify('');
    } else {
      Desk.notify(r.error, true);
    }
  }

  // A logged-out seat logs in (which makes it available); logging in is
  // its own step in the ACD so the seat log's log-in times mean something.
  $('btn-available').addEventListener('click', () =>
    seatAction(seat.status === 'logged_out' ? 'login' : 'available'),
  );
  $('btn-break').addEventListener('click', () =>
    seatAction('break', { reason: $('break-reason').value }),
  );
  $('btn-wrapup-done').addEventListener('click', () => seatAction('wrap-up-done'));

  // ---- Events of this seat ---------------------------------------------------

  function onSeatEvent(ev) {
    switch (ev.event) {
      case 'snapshot':
        showSeat(ev.seat || {});
        break;
      case 'state':
        showSeat(ev);
        break;
      case 'offered':
        offers.set(ev.call_id, ev);
        // Only the latest calls matter; a shift's worth need not pile up.
        while (offers.size > 20) offers.delete(offers.keys().next().value);
        if (ev.call_id === state.callerCallId) showPop();
        break;
      case 'transfer':
        if (ev.call_id === state.callerCallId || ev.call_id === order.call) showTransfer(ev);
        break;
      default:
        // `connected` and `ended` come as socket messages of their own.
        break;
    }
  }

  // ---- The call ----------------------------------------------------------------

  async function onRing(msg) {
    // A new call: the screen pop, the order form and the three-way buttons
    // move to it.
    state.call = msg.call;
    state.callerCallId = msg.caller_call_id;
    callState = 'ringing';
    connectedAt = null;
    endedAt = null;
    $('call-from').textContent = msg.from || '';
    linkOrder(msg.caller_call_id, msg.from || '');
    showConf('idle', '');
    setPressed('btn-hold', false);
    setPressed('btn-mute', false);
    clearPop();
    showCall();
    showPop();
    try {
      const sdp = await Desk.answerOffer(msg.sdp, $('remote-audio'));
      // The ring may have been cancelled while the answer was made.
      if (state.call !== msg.call) return;
      socket.send({ type: 'sdp', call: msg.call, sdp });
      if ($('auto-answer').checked) socket.send({ type: 'answer', call: msg.call });
    } catch (err) {
      // Without audio the agent cannot take the call: decline it so the
      // ACD offers it to another seat at once.
      Desk.notify(`音频协商失败：${err.message}`, true);
      socket.send({ type: 'reject', call: msg.call });
    }
  }

  function onConnected(msg) {
    if (msg.call !== state.call) return;
    callState = 'connected';
    connectedAt = Date.now();
    showCall();
  }

  function onHeld(msg) {
    if (msg.call !== state.call) return;
    callState = msg.on ? 'held' : 'connected';
    setPressed('btn-hold', !!msg.on);
    showCall();
  }

  function onEnded(msg) {
    if (msg.call !== state.call) return;
    endCall(Desk.ENDED_LABELS[msg.reason] || msg.reason || '');
  }

  /** The call is over: audio closed, the order form stays linked to it. */
  function endCall(why) {
    Desk.closePeer();
    state.call = null;
    callState = 'ended';
    endedAt = Date.now();
    // A three-way attempt still ringing went with the call.
    if ($('conf-state').dataset.state === 'ringing') showConf('ended', '通话已结束');
    showCall(why);
  }

  const CALL_LABELS = { ringing: '振铃中', connected: '通话中', held: '保持中', ended: '已结束' };

  function showCall(why = '') {
    $('call-idle').hidden = callState !== null;
    $('call-panel').hidden = callState === null;
    const node = $('call-state');
    node.dataset.state = callState || 'ringing';
    node.textContent = (CALL_LABELS[callState] || '') + (why ? `（${why}）` : '');
    const live = callState !== 'ended';
    $('btn-answer').disabled = callState !== 'ringing';
    $('btn-reject').disabled = callState !== 'ringing';
    $('btn-hangup').disabled = !live;
    $('btn-hold').disabled = callState !== 'connected' && callState !== 'held';
    $('btn-mute').disabled = !live;
    if (state.masked) $('call-from').dataset.masked = '';
    else delete $('call-from').dataset.masked;
  }

  /** Empties the screen pop until the new call's offer is known. */
  function clearPop() {
    for (const id of ['call-queue', 'call-wait', 'call-ivr-path']) $(id).textContent = '–';
    $('earlier-calls').replaceChildren();
    $('open-orders').replaceChildren();
    $('open-orders').classList.remove('repeat');
    $('repeat-badge').hidden = true;
  }

  /** The screen pop of the current call, as far as its offer is known. */
  function showPop() {
    const offer = offers.get(state.callerCallId);
    if (!offer) return;
    if (offer.caller) $('call-from').textContent = offer.caller;
    $('call-queue').textContent = offer.queue || '–';
    $('call-wait').textContent = String(Math.round((offer.waited_ms || 0) / 1000));
    $('call-ivr-path').textContent = (offer.ivr_path || []).join(' → ') || '–';
    const earlier = $('earlier-calls');
    earlier.replaceChildren(
      ...(offer.earlier_calls || []).map((c) =>
        el('li', { 'data-call': c.call_id },
          `${c.started_at || ''} · ${c.queue || '未进队列'} · ${c.seat ? `坐席 ${c.seat}` : '未接通'}` +
            (c.end_reason ? ` · ${c.end_reason}` : '')),
      ),
    );
    if (!earlier.children.length) earlier.append(el('li', { class: 'muted', text: '无' }));
    const open = $('open-orders');
    open.classList.toggle('repeat', !!offer.repeat_caller);
    open.replaceChildren(
      ...(offer.open_orders || []).map((no) => el('li', { 'data-order-no': no, text: no })),
    );
    if (!open.children.length) open.append(el('li', { class: 'muted', text: '无' }));
    $('repeat-badge').hidden = !offer.repeat_caller;
  }

  // Counts the talk time while connected; it stops when the call ends.
  setInterval(() => {
    $('call-timer').textContent = connectedAt
      ? Desk.duration(((endedAt || Date.now()) - connectedAt) / 1000)
      : '–';
  }, 1000);

  /** Sends a call message for the current call, or says there is none. */
  function callMessage(msg) {
    if (!state.call) {
      Desk.notify('当前没有通话', true);
      return;
    }
    socket.send({ ...msg, call: state.call });
  }

  function setPressed(id, on) {
    $(id).setAttribute('aria-pressed', on ? 'true' : 'false');
  }

  $('btn-answer').addEventListener('click', () => callMessage({ type: 'answer' }));
  $('btn-reject').addEventListener('click', () => callMessage({ type: 'reject' }));
  $('btn-hangup').addEventListener('click', () => callMessage({ type: 'hangup' }));
  // The button shows the hold the server confirmed (`held`), not the click.
  $('btn-hold').addEventListener('click', () =>
    callMessage({ type: 'hold', on: callState !== 'held' }),
  );
  $('btn-mute').addEventListener('click', () => {
    const muted = $('btn-mute').getAttribute('aria-pressed') !== 'true';
    setPressed('btn-mute', Desk.setMuted(muted));
  });
  for (const key of document.querySelectorAll('[data-dtmf]')) {
    key.addEventListener('click', () => callMessage({ type: 'dtmf', digits: key.dataset.dtmf }));
  }

  // ---- Three-way calls and transfers -----------------------------------------------

  /** Progress of a three-way call or transfer in `#conf-state`. */
  function showConf(stateWord, text, target = '') {
    const node = $('conf-state');
    node.dataset.state = stateWord;
    node.dataset.target = target;
    node.textContent = text;
  }

  function targetName(target) {
    const option = $('transfer-target').querySelector(`option[value="${CSS.escape(target)}"]`);
    return option ? option.textContent : target;
  }

  /** A `transfer` event: ringing, answered, failed (with a result), ended. */
  function showTransfer(ev) {
    const kind = ev.kind === 'conference' ? '三方通话' : '转接';
    const who = targetName(ev.target);
    const words = {
      ringing: `${kind}：正在呼叫 ${who}…`,
      answered: `${kind}：${who} 已接通`,
      failed: `${kind}：${who} ${Desk.RESULT_LABELS[ev.result] || ev.result || '失败'}`,
      ended: `${kind}：${who} 已结束`,
    };
    showConf(ev.state, words[ev.state] || `${kind}：${ev.state}`, ev.target);
    $('conf-state').dataset.result = ev.result || '';
  }

  /** The caller's call the buttons act on, or null (and why not). */
  function liveCall() {
    if (!state.callerCallId || callState === 'ended' || callState === null) {
      showConf('error', '当前没有通话');
      return null;
    }
    return state.callerCallId;
  }

  /**
   * Dials `target` into the call (`conference` or `transfer`). The request
   * returns once the target answered or failed, so the page shows the
   * attempt at once and the outcome when it comes.
   */
  async function dial(kind, target) {
    const id = liveCall();
    if (!id) return;
    const what = kind === 'conference' ? '三方通话' : '转接';
    showConf('ringing', `${what}：正在呼叫 ${targetName(target)}…`, target);
    const r = await api('POST', `/api/v1/calls/${enc(id)}/${kind}`, { target });
    if (!r.ok) {
      showConf('error', `${what}失败：${r.error}`, target);
      return;
    }
    const result = r.json.result;
    const answered = result === 'answered';
    showConf(
      answered ? 'answered' : 'failed',
      `${what}：${targetName(target)} ${Desk.RESULT_LABELS[result] || result}`,
      target,
    );
    $('conf-state').dataset.result = result || '';
  }

  for (const code of ['110', '119', '120', '122']) {
    $(`btn-conf-${code}`).addEventListener('click', () => dial('conference', code));
  }
  $('btn-transfer').addEventListener('click', () => {
    const target = $('transfer-target').value;
    if (!target) {
      showConf('error', '请选择转接目标');
      return;
    }
    dial('transfer', target);
  });

  /** A request the call answers at once (drop the third party, leave). */
  async function quick(method, path, done) {
    const id = liveCall();
    if (!id) return;
    const r = await api(method, `/api/v1/calls/${enc(id)}/${path}`);
    if (r.ok) showConf('ended', done);
    else showConf('error', r.error);
  }

  $('btn-conf-drop').addEventListener('click', () => quick('DELETE', 'conference', '第三方已挂断'));
  $('btn-conf-leave').addEventListener('click', () =>
    quick('POST', 'leave', '坐席已退出，来电方与第三方继续通话'),
  );

  /** The trunks and units calls can go to (GET /api/v1/desk/directory). */
  async function loadDirectory() {
    const r = await api('GET', '/api/v1/desk/directory');
    if (!r.ok) {
      Desk.notify(`转接目录：${r.error}`, true);
      return;
    }
    const select = $('transfer-target');
    const first = select.options[0];
    const units = el('optgroup', { label: '承办单位' });
    for (const u of r.json.units || []) {
      units.append(el('option', { value: u.target, 'data-state': u.state, text: u.name }));
    }
    const lines = el('optgroup', { label: '专线' });
    const unitLines = new Set((r.json.units || []).map((u) => u.target));
    for (const t of r.json.trunks || []) {
      // The emergency services have buttons of their own; a unit's line is
      // listed under the unit.
      if (t.emergency || unitLines.has(t.name)) continue;
      lines.append(el('option', { value: t.name, 'data-state': t.state, text: `${t.name} ${t.description || ''}`.trim() }));
    }
    select.replaceChildren(first, ...[units, lines].filter((g) => g.children.length));
    for (const t of r.json.trunks || []) {
      const button = $(`btn-conf-${t.name}`);
      if (!button) continue;
      button.dataset.state = t.state;
      button.title = `${t.description || t.name}（线路状态：${t.state}）`;
    }
  }

  // ---- Work order -----------------------------------------------------------------

  /** Links the order form to a new call, prefilled from it. */
  function linkOrder(callId, phone) {
    order = { call: callId, phone, filed: null, key: null };
    $('order-form').reset();
    $('order-phone').value = phone;
    for (const f of document.querySelectorAll('#order-form .invalid')) f.classList.remove('invalid');
    applyCategoryFilter('');
    $('order-linked').textContent = `关联来电：${callId}`;
    showResult('', '');
  }

  function showResult(stateWord, text, attrs = {}) {
    const node = $('order-result');
    node.dataset.state = stateWord;
    for (const a of ['orderNo', 'errorField', 'spooled', 'closing']) delete node.dataset[a];
    Object.assign(node.dataset, attrs);
    node.textContent = text;
  }

  /** The form's field for a field the API names in an error. */
  const FIELD_INPUTS = {
    'citizen.phone': 'order-phone',
    'citizen.name': 'order-name',
    appeal_type: 'order-type',
    urgency: 'order-urgency',
    category: 'order-category',
    division: 'order-division',
    location: 'order-location',
    content: 'order-content',
  };

  /** What agents call the fields the API names. */
  const FIELD_LABELS = {
    'citizen.phone': '来电号码',
    'citizen.name': '姓名',
    appeal_type: '诉求类型',
    urgency: '紧急程度',
    category: '事项分类',
    division: '所属区划',
    location: '事发地点',
    content: '诉求内容',
    kb_entry: '知识库条目',
    answer: '答复内容',
  };

  /** An API failure for the form: the field by its label, then the API's words. */
  function failure(r) {
    if (!r.field) return r.error;
    const label = FIELD_LABELS[r.field];
    const message = (r.json && r.json.error) || '';
    return label ? `${label}（${r.field}）：${message}` : r.error;
  }

  /** The order as the API takes it, from the form. */
  function orderBody() {
    const title = $('order-title').value.trim();
    const text = $('order-content').value.trim();
    // An order has no title field: the title leads the content, as the
    // hotline writes it on paper.
    const content = title && text ? `【${title}】${text}` : title || text;
    const body = {
      appeal_type: $('order-type').value,
      urgency: $('order-urgency').value,
      category: $('order-category').value,
      division: $('order-division').value,
      content,
    };
    const citizen = {};
    const name = $('order-name').value.trim();
    if (name) citizen.name = name;
    // The number shown may be masked; the server fills in the caller's
    // real number unless the agent typed another one to call back on.
    const phone = $('order-phone').value.trim();
    if (phone && phone !== order.phone) citizen.phone = phone;
    if (Object.keys(citizen).length) body.citizen = citizen;
    const location = $('order-location').value.trim();
    if (location) body.location = location;
    return body;
  }

  /**
   * Files the form as the call's order. The Idempotency-Key is kept only
   * when the answer never came (a retry of the same order must not file it
   * twice); anything else gets a fresh one next time. Resolves with the
   * order number, or null.
   */
  async function fileOrder() {
    if (!order.call) {
      showResult('error', '尚无关联来电，无法提交工单');
      return null;
    }
    for (const f of document.querySelectorAll('#order-form .invalid')) f.classList.remove('invalid');
    order.key = order.key || Desk.newKey();
    showResult('busy', '正在提交…');
    $('btn-submit-order').disabled = true;
    const r = await api('POST', `/api/v1/calls/${enc(order.call)}/order`, orderBody(), {
      'Idempotency-Key': order.key,
    });
    $('btn-submit-order').disabled = false;
    if (!(r.network || r.status === 503)) order.key = null;
    if (r.ok && r.status === 202) {
      showResult('spooled', `数据库暂不可用，工单已暂存，恢复后自动写入（${r.json.spooled}）`, {
        spooled: r.json.spooled,
      });
      return null;
    }
    if (!r.ok) {
      const input = r.field && FIELD_INPUTS[r.field];
      if (input) $(input).classList.add('invalid');
      showResult('error', `提交失败：${failure(r)}`, r.field ? { errorField: r.field } : {});
      return null;
    }
    const no = r.json.order.order_no;
    order.filed = no;
    showResult('ok', `工单已提交：${no}`, { orderNo: no });
    return no;
  }

  $('order-form').addEventListener('submit', (e) => {
    e.preventDefault();
    fileOrder();
  });
  $('btn-clear-order').addEventListener('click', () => {
    $('order-form').reset();
    $('order-phone').value = order.phone;
    applyCategoryFilter('');
  });

  /** The pickers of the form, from GET /api/v1/catalogue. */
  async function loadCatalogue() {
    const r = await api('GET', '/api/v1/catalogue');
    if (!r.ok) {
      Desk.notify(`事项目录：${r.error}`, true);
      return;
    }
    catalogue = r.json;
    const choices = (select, list, initial) => {
      select.replaceChildren(...list.map((c) => el('option', { value: c.value, text: c.name })));
      select.value = initial;
      // A form reset goes back to the default, not to the first option.
      for (const o of select.options) o.defaultSelected = o.value === initial;
    };
    choices($('order-type'), catalogue.appeal_types || [], 'consultation');
    choices($('order-urgency'), catalogue.urgencies || [], 'normal');
    const categories = $('order-category');
    const walk = (nodes, out) => {
      for (const c of nodes) {
        const pad = '\u3000'.repeat(c.level - 1);
        out.push(el('option', {
          value: c.code,
          'data-level': c.level,
          'data-emergency': c.emergency ? 'true' : null,
          text: `${pad}${c.code} ${c.name}${c.emergency ? '（突发）' : ''}`,
        }));
        walk(c.children || [], out);
      }
      return out;
    };
    categories.replaceChildren(categories.options[0], ...walk(catalogue.categories || [], []));
    const divisions = $('order-division');
    const byCode = new Map((catalogue.divisions || []).map((d) => [d.code, d]));
    const depth = (d) => (d.parent && byCode.has(d.parent) ? 1 + depth(byCode.get(d.parent)) : 0);
    divisions.replaceChildren(
      divisions.options[0],
      ...(catalogue.divisions || []).map((d) =>
        el('option', { value: d.code, text: `${'\u3000'.repeat(depth(d))}${d.name}` }),
      ),
    );
  }

  /** Shows only the categories matching `text` (code or name). */
  function applyCategoryFilter(text) {
    const needle = text.trim();
    $('order-category-filter').value = text;
    for (const o of $('order-category').options) {
      if (!o.value) continue;
      o.hidden = needle !== '' && !o.textContent.includes(needle);
    }
  }
  $('order-category-filter').addEventListener('input', (e) => applyCategoryFilter(e.target.value));

  // ---- Knowledge base -------------------------------------------------------------------

  $('kb-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const q = $('kb-query').value.trim();
    const list = $('kb-results');
    if (!q) {
      list.replaceChildren(el('li', { class: 'muted', text: '请输入要查询的问题' }));
      return;
    }
    const r = await api('GET', `/api/v1/kb/search?q=${enc(q)}&limit=10`);
    if (!r.ok) {
      list.replaceChildren(el('li', { class: 'error', text: r.error }));
      return;
    }
    const hits = r.json.results || [];
    list.replaceChildren(...hits.map(kbItem));
    if (!hits.length) list.append(el('li', { class: 'muted', text: '知识库中没有找到相关条目' }));
  });

  function kbItem(hit) {
    const source = hit.source || {};
    const button = el('button', { type: 'button', class: 'kb-answer good', 'data-entry': hit.entry_id, text: '直接答复' });
    button.addEventListener('click', () => answerFromKb(hit));
    return el('li', { 'data-entry': hit.entry_id },
      el('b', { text: hit.title }),
      el('p', { text: hit.snippet }),
      el('small', { text: [hit.entry_id, source.issuer, source.number].filter(Boolean).join(' · ') }),
      button);
  }

  /**
   * Closes the call's order as answered directly from a knowledge-base
   * entry (POST /api/v1/orders/{no}/direct-answer with `kb_entry`, which
   * also counts the entry's hit). The order is filed first when it is not
   * yet, with the entry's category and division where the form leaves them
   * open; the answer recorded is the entry's full live answer.
   */
  async function answerFromKb(hit) {
    if (!order.call) {
      showResult('error', '尚无关联来电，无法直接答复');
      return;
    }
    const entry = await api('GET', `/api/v1/kb/${enc(hit.entry_id)}`);
    const live = entry.ok && entry.json.live;
    const answer = (live && live.content && live.content.answer) || hit.snippet;
    let no = order.filed;
    if (!no) {
      if (!$('order-category').value) $('order-category').value = hit.category;
      if (!$('order-division').value) $('order-division').value = hit.division;
      if (!$('order-content').value.trim() && !$('order-title').value.trim()) {
        $('order-content').value = `市民咨询：${hit.title}`;
      }
      no = await fileOrder();
      if (!no) return;
    }
    const r = await api('POST', `/api/v1/orders/${enc(no)}/direct-answer`, {
      kb_entry: hit.entry_id,
      answer,
    });
    if (r.ok) {
      showResult('ok', `工单 ${no} 已直接答复（知识库 ${hit.entry_id}）`, {
        orderNo: no,
        closing: 'direct_answer',
      });
    } else {
      showResult('error', `工单 ${no} 直接答复失败：${failure(r)}`, {
        orderNo: no,
        ...(r.field ? { errorField: r.field } : {}),
      });
    }
  }
})();
