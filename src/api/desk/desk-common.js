'use strict';
/*
 * What the agent desktop and the supervisor view share: the seat's
 * WebSocket (/api/v1/webseat, docs/browser-seat.md), the call audio over
 * WebRTC, the REST API with the bearer token the socket hands out, and a
 * few labels and helpers. Plain script, no build step: it defines the
 * global `Desk` and keeps `window.hotlineDesk` current for tests and for
 * anyone debugging a desk from the console.
 */
const Desk = (() => {
  /** What is going on, kept current as things change. */
  const state = {
    pc: null,            // the RTCPeerConnection of the current (or last) call
    localStream: null,   // the microphone, opened once at log-in
    remoteStream: null,  // what the far end sends
    call: null,          // the seat's leg in socket messages; null when no call
    callerCallId: null,  // the caller's call id, for /api/v1/calls/{id}/...
    token: null,         // bearer token, valid while the socket is open
    seat: null,
    role: null,
    masked: false,
  };
  window.hotlineDesk = state;

  const $ = (id) => document.getElementById(id);

  /** An element with attributes (`text` sets its text) and children. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') node.textContent = v;
      else if (k === 'class') node.className = v;
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c !== null && c !== undefined) node.append(c);
    }
    return node;
  }

  const enc = encodeURIComponent;

  /** Seconds as m:ss (h:mm:ss past an hour). */
  function duration(secs) {
    const s = Math.max(0, Math.floor(secs));
    const two = (n) => String(n).padStart(2, '0');
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    return h ? `${h}:${two(m)}:${two(s % 60)}` : `${m}:${two(s % 60)}`;
  }

  /**
   * A random key for Idempotency-Key. crypto.randomUUID needs a secure
   * context; a desk on plain http inside the floor's network has none, but
   * getRandomValues works everywhere.
   */
  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return 'desk-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  // ---- Labels -------------------------------------------------------

  /** The ACD's seat statuses and activities, as agents call them. */
  const SEAT_LABELS = {
    logged_out: '未签入',
    available: '空闲',
    on_break: '小休',
    idle: '空闲',
    offered: '振铃中',
    in_call: '通话中',
    wrap_up: '话后整理',
  };

  /**
   * The one word a seat shows: what it is doing when it is doing
   * something (ringing, talking, wrapping up), else how it is set
   * (available, on break, logged out).
   */
  function seatWord(view) {
    const activity = view.state || 'idle';
    return activity !== 'idle' ? activity : (view.status || 'logged_out');
  }

  function seatLabel(view) {
    const word = seatWord(view);
    let label = SEAT_LABELS[word] || word;
    if (word === 'on_break' && view.reason) label += `（${view.reason}）`;
    return label;
  }

  /** How a transfer or three-way attempt ended (src/call/transfer.rs). */
  const RESULT_LABELS = {
    answered: '已接通',
    busy: '忙线',
    'no-answer': '无人接听',
    unreachable: '无法接通',
    'trunk-down': '线路故障',
    declined: '拒接',
    rejected: '被拒绝',
    cancelled: '已取消',
  };

  const ENDED_LABELS = {
    caller_hangup: '来电方挂机',
    agent_hangup: '坐席挂机',
    cancelled: '来电已转他处或已挂断',
    failed: '呼叫失败',
  };

  const SOCKET_ERRORS = {
    login_failed: '坐席号或密码错误',
    locked_out: '密码错误次数过多，已暂时锁定',
    replaced: '该坐席已在别处登录，本页已下线',
    not_logged_in: '尚未登录',
    bad_message: '消息格式错误',
    no_call: '没有这通电话',
    disabled: '该坐席已停用',
  };

  // ---- REST ---------------------------------------------------------

  /**
   * One API request with the seat's token. Never throws: the answer says
   * `ok`, `status`, the JSON body, and for a failure a readable `error`
   * (the API's message, prefixed with the field it names).
   */
  async function api(method, path, body, headers = {}) {
    const init = { method, headers: { ...headers } };
    if (state.token) init.headers.Authorization = `Bearer ${state.token}`;
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (e) {
      return { ok: false, status: 0, json: null, field: null, error: `无法连接服务器（${e.message}）`, network: true };
    }
    let json = null;
    try {
      json = await response.json();
    } catch (_) {
      // Not JSON: the status alone says what happened.
    }
    if (response.ok) return { ok: true, status: response.status, json };
    const field = json && json.field ? json.field : null;
    const message = (json && json.error) || `HTTP ${response.status}`;
    return {
      ok: false,
      status: response.status,
      json,
      field,
      error: field ? `${field}：${message}` : message,
    };
  }

  // ---- The seat's socket --------------------------------------------

  /** The seat socket's address, on this page's own origin. */
  function socketUrl(path) {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${scheme}//${location.host}${path}`;
  }

  /**
   * The seat's WebSocket. `handlers` get the server's messages by type
   * (`ring`, `connected`, `held`, `ended`, `event`, `error`) and
   * `link(state)` with `connected`, `reconnecting` or `closed`. After a
   * log-in, a socket that drops is opened again with the same
   * credentials (kept in memory only), since the seat is unbound while it
   * is away; a seat taken over elsewhere is not.
   */
  class SeatSocket {
    constructor(handlers) {
      this.handlers = handlers;
      this.ws = null;
      this.credentials = null;
      this.retry = 0;
      this.stopped = false;
      this.welcomed = false;
      this.pinger = null;
    }

    /** Logs in; resolves with `welcome`, rejects with a readable Error. */
    login(seat, password) {
      this.stopped = false;
      this.credentials = { seat, password };
      return this.open();
    }

    open() {
      return new Promise((resolve, reject) => {
        let settled = false;
        const ws = new WebSocket(socketUrl('/api/v1/webseat'));
        this.ws = ws;
        ws.onopen = () => {
          ws.send(JSON.stringify({ type: 'login', ...this.credentials }));
        };
        ws.onmessage = (e) => {
          let msg;
          try {
            msg = JSON.parse(e.data);
          } catch (_) {
            return;
          }
          if (msg.type === 'welcome') {
            this.retry = 0;
            this.welcomed = true;
            state.token = msg.token;
            state.seat = msg.seat;
            state.role = msg.role;
            state.masked = !!msg.masked;
            this.link('connected');
            this.keepAlive();
            if (!settled) {
              settled = true;
              resolve(msg);
            }
          } else if (msg.type === 'error' && !settled) {
            settled = true;
            // A refused log-in is final until the agent tries again.
            this.stopped = true;
            reject(new Error(SOCKET_ERRORS[msg.code] || msg.message || msg.code));
            ws.close();
            return;
          } else if (msg.type === 'error' && msg.code === 'replaced') {
            this.stopped = true;
          }
          const handler = this.handlers[msg.type];
          if (handler) handler(msg);
        };
        ws.onclose = () => {
          clearInterval(this.pinger);
          if (this.ws !== ws) return;
          state.token = null;
          if (!settled) {
            settled = true;
            reject(new Error('无法连接坐席服务（/api/v1/webseat）'));
          }
          // Before the first welcome the agent is at the form and retries.
          if (!this.welcomed) return;
          if (this.stopped) {
            this.link('closed');
            return;
          }
          // Back off up to 30 s so a restarting server is not hammered.
          this.retry += 1;
          const wait = Math.min(30, 2 ** this.retry) * 1000;
          this.link('reconnecting');
          setTimeout(() => {
            if (!this.stopped) this.open().catch(() => {});
          }, wait);
        };
      });
    }

    /** Pings so idle proxies keep the socket open. */
    keepAlive() {
      clearInterval(this.pinger);
      this.pinger = setInterval(() => this.send({ type: 'ping' }), 25000);
    }

    link(how) {
      if (this.handlers.link) this.handlers.link(how);
    }

    /** Sends a message; false when the socket is not open. */
    send(msg) {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
      this.ws.send(JSON.stringify(msg));
      return true;
    }

    close() {
      this.stopped = true;
      if (this.ws) this.ws.close();
    }
  }

  // ---- Audio ---------------------------------------------------------

  let micReady = Promise.resolve(null);

  /**
   * Opens the microphone once (at log-in) for every call after. A failure
   * is returned, not thrown: the seat still logs in and hears the caller,
   * and the page says why it cannot be heard.
   */
  function openMicrophone() {
    if (state.localStream) return Promise.resolve(null);
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      micReady = Promise.resolve(new Error('此页面无法使用麦克风（需要 HTTPS 或本机访问）'));
      return micReady;
    }
    micReady = navigator.mediaDevices.getUserMedia({ audio: true }).then(
      (stream) => {
        state.localStream = stream;
        return null;
      },
      (e) => e,
    );
    return micReady;
  }

  /**
   * Resolves once ICE gathering is complete: the answer goes in one
   * message with every candidate (no trickle). Host candidates gather in
   * milliseconds; the limit only guards against an interface that never
   * finishes, in which case what was gathered is sent.
   */
  function iceGathered(pc, limitMs = 3000) {
    if (pc.iceGatheringState === 'complete') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState !== 'complete') return;
        pc.removeEventListener('icegatheringstatechange', done);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        pc.removeEventListener('icegatheringstatechange', done);
        resolve();
      }, limitMs);
      pc.addEventListener('icegatheringstatechange', done);
    });
  }

  /** Closes the current call's peer connection (kept for inspection). */
  function closePeer() {
    if (state.pc && state.pc.signalingState !== 'closed') state.pc.close();
    state.remoteStream = null;
  }

  /**
   * Answers the offer of a `ring`: a new peer connection (no ICE servers:
   * the gateway announces reachable host addresses), the microphone's
   * track, the remote audio into `audio`, and the SDP answer with every
   * candidate in it.
   */
  async function answerOffer(offerSdp, audio) {
    closePeer();
    await micReady;
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    if (state.localStream) {
      for (const track of state.localStream.getAudioTracks()) {
        // A new call starts unmuted.
        track.enabled = true;
        pc.addTrack(track, state.localStream);
      }
    }
    pc.ontrack = (e) => {
      state.remoteStream = e.streams[0] || new MediaStream([e.track]);
      audio.srcObject = state.remoteStream;
      // The log-in click allowed playback; a refusal here is not fatal.
      audio.play().catch(() => {});
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offerSdp });
    await pc.setLocalDescription(await pc.createAnswer());
    await iceGathered(pc);
    return pc.localDescription.sdp;
  }

  /** Mutes or unmutes the microphone locally; returns whether muted. */
  function setMuted(muted) {
    if (!state.localStream) return false;
    for (const track of state.localStream.getAudioTracks()) track.enabled = !muted;
    return muted;
  }

  // ---- Live events for the whole floor (supervisor) ------------------

  /**
   * `/api/v1/events`: every seat's events, opened again when it drops.
   * Returns a function that closes it for good.
   */
  function floorEvents(onEvent, onLink) {
    let ws = null;
    let stopped = false;
    const open = () => {
      ws = new WebSocket(socketUrl('/api/v1/events'));
      ws.onopen = () => onLink && onLink(true);
      ws.onmessage = (e) => {
        try {
          onEvent(JSON.parse(e.data));
        } catch (_) {
          // One bad message must not stop the table.
        }
      };
      ws.onclose = () => {
        onLink && onLink(false);
        if (!stopped) setTimeout(open, 3000);
      };
    };
    open();
    return () => {
      stopped = true;
      if (ws) ws.close();
    };
  }

  // ---- Page plumbing ---------------------------------------------------

  /** A short message in the top bar (`bad` marks a failure). */
  function notify(text, bad = false) {
    const node = $('desk-message');
    if (!node) return;
    node.textContent = text;
    node.title = text;
    node.dataset.kind = bad ? 'error' : 'info';
  }

  /** Shows the socket's state in `#conn-state`. */
  function showLink(how) {
    const node = $('conn-state');
    if (!node) return;
    node.dataset.state = how;
    node.textContent = { connected: '● 已连接', reconnecting: '● 连接中断，重连中…', closed: '● 已下线' }[how] || how;
  }

  /**
   * Wires the log-in form (`#seat`, `#password`, `#login`, errors in
   * `#login-error`) to `socket`; `welcomed(msg)` runs once logged in.
   */
  function loginForm(socket, welcomed) {
    const form = $('login-form');
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const seat = $('seat').value.trim();
      const password = $('password').value;
      $('login-error').textContent = '';
      if (!seat || !password) {
        $('login-error').textContent = '请输入坐席号和密码';
        return;
      }
      $('login').disabled = true;
      // The microphone prompt and the log-in run side by side; a ring
      // right after the welcome waits for the microphone.
      const mic = openMicrophone();
      try {
        const welcome = await socket.login(seat, password);
        $('password').value = '';
        $('login-view').hidden = true;
        $('desk').hidden = false;
        welcomed(welcome);
        const micError = await mic;
        if (micError) notify(`未能打开麦克风：${micError.message}`, true);
      } catch (err) {
        $('login-error').textContent = err.message;
      } finally {
        $('login').disabled = false;
      }
    });
  }

  return {
    state,
    $,
    el,
    enc,
    duration,
    newKey,
    SEAT_LABELS,
    seatWord,
    seatLabel,
    RESULT_LABELS,
    ENDED_LABELS,
    SOCKET_ERRORS,
    api,
    SeatSocket,
    openMicrophone,
    answerOffer,
    closePeer,
    setMuted,
    floorEvents,
    notify,
    showLink,
    loginForm,
  };
})();
