// The softphone: one call per WebSocket to /api/webrtc (mediaserver/api/routes_webrtc.py).
// The offer is sent whole once ICE gathering is over (the server is ICE-lite);
// what the call says comes back as {type: answer|ringing|answered|hangup|error}.
// Used by the /phone page (phone-page.js) and the console's Phone page: the page
// gives the key, an <audio> element, and callbacks for the state and the level.

function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((done) => {
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") done();
    });
    setTimeout(done, 3000); // what was gathered by then is enough on a LAN
  });
}

export class Phone {
  // view: {key(), audio (an <audio> element), onState(state, reason), onLevel(dB)}
  constructor(view) {
    this.view = view;
    this.pc = null;
    this.ws = null;
    this.state = "idle";
    this.reason = "";
    this.callId = null;
    this.messages = [];
    this.analyser = null;
  }

  get busy() {
    return !["idle", "ended", "failed"].includes(this.state);
  }

  show(state, reason = "") {
    this.state = state;
    this.reason = reason;
    this.view.onState(state, reason);
  }

  async call(to) {
    this.show("dialling");
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    stream.getTracks().forEach((track) => pc.addTrack(track, stream));
    pc.ontrack = (event) => this.hear(event.streams[0] || new MediaStream([event.track]));
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const url = new URL("/api/webrtc", location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    url.searchParams.set("key", this.view.key());
    const ws = new WebSocket(url);
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ type: "call", to, sdp: pc.localDescription.sdp }));
    // One message at a time: the answer's setRemoteDescription finishes before "answered".
    let told = Promise.resolve();
    ws.onmessage = (event) => {
      told = told.then(() => this.told(JSON.parse(event.data)));
    };
    ws.onclose = (event) => {
      if (this.state !== "ended" && this.state !== "failed") {
        this.end(event.code === 1000 ? "ended" : "failed", event.reason || `closed (${event.code})`);
      }
    };
  }

  async told(message) {
    this.messages.push(message);
    if (message.type === "answer") {
      this.callId = message.call_id;
      await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
      this.show("ringing");
    } else if (message.type === "ringing") {
      this.show("ringing");
    } else if (message.type === "answered") {
      this.show("answered");
    } else if (message.type === "hangup") {
      this.end("ended", message.reason);
    } else if (message.type === "error") {
      this.end("failed", message.message);
    }
  }

  hear(stream) {
    const audio = this.view.audio;
    audio.srcObject = stream; // Chrome feeds Web Audio from a remote stream only when played
    audio.play().catch(() => {});
    const context = new AudioContext();
    context.resume();
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 8192;
    context.createMediaStreamSource(stream).connect(this.analyser);
    const meter = () => {
      if (!this.analyser) return;
      this.view.onLevel(this.levelDb());
      requestAnimationFrame(meter);
    };
    meter();
  }

  // What the page hears now: the loudest frequency (Hz) and the level (dBFS).
  dominantFrequency() {
    if (!this.analyser) return null;
    const bins = new Float32Array(this.analyser.frequencyBinCount);
    this.analyser.getFloatFrequencyData(bins);
    let best = 0;
    for (let i = 1; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
    return (best * this.analyser.context.sampleRate) / this.analyser.fftSize;
  }

  levelDb() {
    if (!this.analyser) return -Infinity;
    const samples = new Float32Array(this.analyser.fftSize);
    this.analyser.getFloatTimeDomainData(samples);
    const power = samples.reduce((sum, x) => sum + x * x, 0) / samples.length;
    return 10 * Math.log10(power || 1e-12);
  }

  press(keys) {
    const sender = this.pc && this.pc.getSenders().find((s) => s.dtmf);
    if (sender) sender.dtmf.insertDTMF(keys, 120, 80); // RFC 4733 events (telephone-event)
  }

  hangup() {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify({ type: "hangup" }));
    }
    this.end("ended", "hung up");
  }

  end(state, reason) {
    this.show(state, reason || "");
    if (this.pc) this.pc.close();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(1000);
    this.analyser = null;
  }
}
