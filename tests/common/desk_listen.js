// Put into a page by the browser-seat tests (Runtime.evaluate): decodes
// the audio a WebRTC peer connection receives, as the agent's headset
// would play it, and keeps it as 8 kHz 16-bit samples with the page time
// they arrived at, for the test to judge by Goertzel like every other
// party's audio. Also reads the connection's RTP statistics.
//
// Chrome pulls a remote WebRTC track into WebAudio only while a media
// element plays it, so the stream also plays in a muted <audio>.
(() => {
  if (window.hotlineTest) return;
  const RATE = 8000;
  // At most five minutes of audio.
  const KEEP = 300 * RATE;
  // {at: performance.now(), pcm: Int16Array}, oldest first.
  const chunks = [];
  let kept = 0;
  let ctx = null;
  let processor = null;
  let source = null;
  let element = null;
  let stream = null;
  // Averaging over each output sample's span of input samples (a boxcar
  // low-pass) down to 8 kHz.
  let sum = 0;
  let count = 0;
  let position = 0;
  let callbacks = 0;
  let playError = null;

  function take(input) {
    const step = ctx.sampleRate / RATE;
    const out = [];
    for (let i = 0; i < input.length; i++) {
      sum += input[i];
      count += 1;
      position += 1;
      if (position >= step) {
        position -= step;
        const v = Math.max(-1, Math.min(1, sum / count));
        out.push(Math.round(v * 32767));
        sum = 0;
        count = 0;
      }
    }
    chunks.push({ at: performance.now(), pcm: Int16Array.from(out) });
    kept += out.length;
    while (kept > KEEP && chunks.length > 1) kept -= chunks.shift().pcm.length;
  }

  window.hotlineTest = {
    // Starts decoding `s` (a MediaStream), instead of any stream before.
    async listen(s) {
      if (!s || s.getAudioTracks().length === 0) throw new Error('no audio track to listen to');
      if (!ctx) {
        ctx = new AudioContext({ sampleRate: 48000 });
        processor = ctx.createScriptProcessor(4096, 1, 1);
        processor.onaudioprocess = (e) => {
          callbacks += 1;
          take(e.inputBuffer.getChannelData(0));
        };
        // A script processor runs only while connected to the output; it
        // feeds it silence.
        const mute = ctx.createGain();
        mute.gain.value = 0;
        processor.connect(mute);
        mute.connect(ctx.destination);
      }
      if (stream !== s) {
        stream = s;
        if (source) source.disconnect();
        if (!element) {
          element = document.createElement('audio');
          element.muted = true;
          element.autoplay = true;
          element.id = 'hotline-test-listener';
          document.body.appendChild(element);
        }
        element.srcObject = s;
        playError = null;
        try {
          await element.play();
        } catch (e) {
          playError = String(e);
        }
        source = ctx.createMediaStreamSource(s);
        source.connect(processor);
      }
      await ctx.resume();
      return this.state();
    },

    now() {
      return performance.now();
    },

    // The samples that arrived from page time `from` to `to`, as base64
    // of little-endian 16-bit integers.
    heard(from, to) {
      const parts = chunks.filter((c) => c.at >= from && c.at < to).map((c) => c.pcm);
      const n = parts.reduce((a, p) => a + p.length, 0);
      const bytes = new Uint8Array(n * 2);
      const view = new DataView(bytes.buffer);
      let at = 0;
      for (const p of parts) {
        for (let i = 0; i < p.length; i++, at += 2) view.setInt16(at, p[i], true);
      }
      let text = '';
      for (let i = 0; i < bytes.length; i += 0x8000) {
        text += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
      return btoa(text);
    },

    state() {
      return {
        context: ctx ? ctx.state : null,
        rate: ctx ? ctx.sampleRate : null,
        callbacks,
        seconds_kept: kept / RATE,
        element_paused: element ? element.paused : null,
        play_error: playError,
        tracks: stream
          ? stream.getAudioTracks().map((t) => ({ state: t.readyState, muted: t.muted, enabled: t.enabled }))
          : null,
      };
    },

    // What `pc` reports of its audio: inbound and outbound RTP, the codec
    // and the selected candidate pair.
    async stats(pc) {
      if (!pc) return null;
      const report = await pc.getStats();
      const out = { inbound: [], outbound: [], pair: null, connection: pc.connectionState, ice: pc.iceConnectionState };
      report.forEach((s) => {
        const codec = s.codecId && report.get(s.codecId);
        if (s.type === 'inbound-rtp' && s.kind === 'audio') {
          out.inbound.push({
            codec: codec ? codec.mimeType : null,
            packetsReceived: s.packetsReceived,
            bytesReceived: s.bytesReceived,
            packetsLost: s.packetsLost,
            jitter: s.jitter,
            audioLevel: s.audioLevel,
            totalAudioEnergy: s.totalAudioEnergy,
            totalSamplesDuration: s.totalSamplesDuration,
            concealedSamples: s.concealedSamples,
          });
        }
        if (s.type === 'outbound-rtp' && s.kind === 'audio') {
          out.outbound.push({ codec: codec ? codec.mimeType : null, packetsSent: s.packetsSent, bytesSent: s.bytesSent });
        }
        if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
          const local = report.get(s.localCandidateId);
          const remote = report.get(s.remoteCandidateId);
          out.pair = {
            local: local ? `${local.address}:${local.port} ${local.candidateType}` : null,
            remote: remote ? `${remote.address}:${remote.port} ${remote.candidateType}` : null,
          };
        }
      });
      return out;
    },
  };
})();
