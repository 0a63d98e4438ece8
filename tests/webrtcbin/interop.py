#!/usr/bin/python3
"""Third-party interop test: two GStreamer `webrtcbin` clients (libnice ICE with its
defaults) join one Chorus room through the signaling WebSocket.

Each participant has two webrtcbins: publisher (client offers) and subscriber (server
offers). Alice publishes microphone (Opus) and camera (VP8); Bob publishes his microphone,
then his camera in a second publisher offer (renegotiation, which also renegotiates
Alice's subscriber connection). Both decode what they receive, stay connected for
HOLD seconds, each asks for a keyframe of the video it receives (Bob by PLI, Alice by
FIR, both sent by webrtcbin's RTP session as compound RTCP) and checks the request
reaches the other side's encoder, then both leave.

Run by tests/webrtcbin/run.sh inside a private network namespace (libnice needs a
non-loopback interface carrying 127.0.0.1). Needs Debian's python3-gi,
gir1.2-gst-plugins-bad-1.0, gstreamer1.0-{plugins-base,plugins-good,plugins-bad,nice}
and python3-websockets. Exit code 0 when every check passed, 1 otherwise.

Environment: CHORUS_URL (http://127.0.0.1:7880), WEBRTCBIN_HOLD_SECS (25: seconds both
stay connected, counted from the moment all four ICE connections are up).
"""

import asyncio
import faulthandler
import json
import os
import re
import sys
import time
import urllib.request

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstWebRTC", "1.0")
gi.require_version("GstSdp", "1.0")
gi.require_version("GstVideo", "1.0")
from gi.repository import Gst, GstSdp, GstVideo, GstWebRTC  # noqa: E402

import websockets  # noqa: E402

BASE = os.environ.get("CHORUS_URL", "http://127.0.0.1:7880").rstrip("/")
HOLD = float(os.environ.get("WEBRTCBIN_HOLD_SECS", "25"))
# Bounded waits (generous: a loaded 2-core VM runs the server, four webrtcbins and two
# VP8 encoders at once).
STEP_TIMEOUT = 15.0
KEYFRAME_TIMEOUT = 4.0  # per attempt; two attempts
T0 = time.monotonic()

MEDIA_SOURCE = {"audio": "microphone", "video": "camera"}


def now():
    return time.monotonic() - T0


def log(*args):
    print("[webrtcbin %6.2f]" % now(), *args, flush=True)


class Checks:
    """Collects failed checks; the test goes on where it can, to report them all."""

    def __init__(self):
        self.failed = []
        self.passed = []

    def check(self, ok, what, detail=""):
        if ok:
            self.passed.append(what)
            log("PASS", what)
        else:
            msg = what + (": " + detail if detail else "")
            self.failed.append(msg)
            log("FAIL", msg)
        return ok


CHECKS = Checks()


class Fatal(Exception):
    """A step that later steps need did not happen."""


def require(ok, what, detail=""):
    if not CHECKS.check(ok, what, detail):
        raise Fatal(what)


# ----------------------------------------------------------------------------- SDP


def sdp_sections(text):
    """The media sections of an SDP: list of dicts kind/mid/direction/msid_track/msid_stream."""
    out = []
    for block in re.split(r"\r?\nm=", text)[1:]:
        lines = block.splitlines()
        sec = {"kind": lines[0].split()[0], "port": lines[0].split()[1], "mid": None,
               "direction": "sendrecv", "msid_track": None, "msid_stream": None}
        for ln in lines[1:]:
            if ln.startswith("a=mid:"):
                sec["mid"] = ln[6:].strip()
            elif ln.strip() in ("a=sendrecv", "a=sendonly", "a=recvonly", "a=inactive"):
                sec["direction"] = ln.strip()[2:]
            elif ln.startswith("a=msid:"):
                parts = ln[7:].split()
                sec["msid_stream"] = parts[0]
                sec["msid_track"] = parts[1] if len(parts) > 1 else None
            elif ln.startswith("a=ssrc:") and " msid:" in ln and sec["msid_track"] is None:
                parts = ln.split(" msid:", 1)[1].split()
                sec["msid_stream"] = parts[0]
                sec["msid_track"] = parts[1] if len(parts) > 1 else None
        out.append(sec)
    return out


def rtcp_shape(data):
    """The packets of an RTCP compound, e.g. ['RR(0 blocks)', 'SDES', 'PSFB-PLI']."""
    names = {200: "SR", 201: "RR", 202: "SDES", 203: "BYE", 205: "RTPFB", 206: "PSFB"}
    psfb = {1: "PLI", 4: "FIR"}
    out = []
    at = 0
    while at + 4 <= len(data):
        count, pt = data[at] & 0x1F, data[at + 1]
        length = (int.from_bytes(data[at + 2:at + 4], "big") + 1) * 4
        name = names.get(pt, str(pt))
        if pt in (200, 201):
            name += "(%d blocks)" % count
        elif pt == 206:
            name += "-" + psfb.get(count, "fmt%d" % count)
        out.append(name)
        at += length
    return out


def ice_ufrag(sdp):
    found = re.findall(r"a=ice-ufrag:(\S+)", sdp)
    return found[0] if found else None


def session_description(kind, text):
    res, msg = GstSdp.SDPMessage.new_from_text(text)
    if res != GstSdp.SDPResult.OK:
        raise Fatal("cannot parse SDP: %s" % res)
    return GstWebRTC.WebRTCSessionDescription.new(kind, msg)


# ------------------------------------------------------------------------- webrtcbin


class PeerConn:
    """One webrtcbin in its own pipeline, and its signaling glue."""

    def __init__(self, client, target):
        self.client = client
        self.target = target  # "publisher" | "subscriber"
        self.name = "%s/%s" % (client.name, target)
        self.loop = client.loop
        self.pipeline = Gst.Pipeline.new(self.name)
        self.webrtc = Gst.ElementFactory.make("webrtcbin", "webrtc")
        self.webrtc.set_property("bundle-policy", GstWebRTC.WebRTCBundlePolicy.MAX_BUNDLE)
        self.pipeline.add(self.webrtc)
        # Keep Python references to the ICE agent objects: without them webrtcbin may
        # crash at create-offer. Default libnice settings, except no UPnP (SSDP multicast
        # would leave the namespace's loopback) and no ICE-TCP (the server has none).
        self.ice = self.webrtc.get_property("ice-agent")
        self.ice.set_property("ice-tcp", False)
        self.agent = self.ice.get_property("agent")
        self.agent.set_property("upnp", False)
        self.ice_states = []  # (t, nick)
        self.conn_states = []
        self.remote_set = False
        self.sdp_sent = False
        self.local_candidates = []  # waiting until our SDP is sent
        self.remote_candidates = []  # waiting until the remote SDP is set
        self.local_mids = []
        self.webrtc.connect("notify::ice-connection-state", self._on_ice_state)
        self.webrtc.connect("notify::connection-state", self._on_conn_state)
        self.webrtc.connect("on-ice-candidate", self._on_ice_candidate)
        self.bus = self.pipeline.get_bus()
        # Show the shape of every keyframe request webrtcbin sends (before SRTP), and of
        # each other kind of RTCP compound once.
        self.rtcp_shapes = set()
        self.rtcp_sent = []  # times webrtcbin sent an RTCP compound on this connection
        rtpbin = self.webrtc.get_by_name("rtpbin")
        if rtpbin is not None:
            rtpbin.connect("pad-added", self._on_rtpbin_pad)

    def _on_rtpbin_pad(self, _rtpbin, pad):
        if pad.get_name().startswith("send_rtcp_src"):
            pad.add_probe(Gst.PadProbeType.BUFFER, self._on_rtcp_out)

    def _on_rtcp_out(self, _pad, info):
        buf = info.get_buffer()
        ok, mapped = buf.map(Gst.MapFlags.READ)
        if ok:
            data = bytes(mapped.data)
            buf.unmap(mapped)
            shape = " + ".join(rtcp_shape(data))
            self.rtcp_sent.append(time.monotonic() - T0)
            # Keyframe requests each time; other forms once.
            if "PSFB" in shape or shape not in self.rtcp_shapes:
                self.rtcp_shapes.add(shape)
                self.loop.call_soon_threadsafe(
                    log, "%s sends RTCP compound: %s" % (self.name, shape))
        return Gst.PadProbeReturn.OK

    # Called on GStreamer threads: hop onto the asyncio loop.
    def _on_ice_state(self, webrtc, _pspec):
        nick = webrtc.get_property("ice-connection-state").value_nick
        self.loop.call_soon_threadsafe(self._record_state, self.ice_states, "ICE", nick)

    def _on_conn_state(self, webrtc, _pspec):
        nick = webrtc.get_property("connection-state").value_nick
        self.loop.call_soon_threadsafe(self._record_state, self.conn_states, "connection", nick)

    def _record_state(self, states, what, nick):
        states.append((now(), nick))
        log("%s %s state: %s" % (self.name, what, nick))
        if what == "ICE" and nick in ("disconnected", "failed") and not self.client.leaving:
            self.client.problem("%s ICE connection state became %s at %.1f s"
                                % (self.name, nick, now()))

    def _on_ice_candidate(self, _webrtc, mline, candidate):
        self.loop.call_soon_threadsafe(self._local_candidate, mline, candidate)

    def _local_candidate(self, mline, candidate):
        if not candidate:
            return
        if self.sdp_sent:
            self._send_candidate(mline, candidate)
        else:
            self.local_candidates.append((mline, candidate))

    def _send_candidate(self, mline, candidate):
        init = {"candidate": candidate, "sdpMLineIndex": mline}
        if mline < len(self.local_mids) and self.local_mids[mline]:
            init["sdpMid"] = self.local_mids[mline]
        self.client.send({"type": "candidate", "target": self.target, "candidate": init})

    def sdp_was_sent(self, sdp_text):
        self.local_mids = [s["mid"] for s in sdp_sections(sdp_text)]
        self.sdp_sent = True
        pending, self.local_candidates = self.local_candidates, []
        for mline, cand in pending:
            self._send_candidate(mline, cand)

    def add_remote_candidate(self, init):
        if not init or not init.get("candidate"):
            return
        if not self.remote_set:
            self.remote_candidates.append(init)
            return
        self.webrtc.emit("add-ice-candidate", int(init.get("sdpMLineIndex") or 0), init["candidate"])

    def remote_description_set(self):
        self.remote_set = True
        pending, self.remote_candidates = self.remote_candidates, []
        for init in pending:
            self.add_remote_candidate(init)

    async def call(self, signal, *args):
        """Emits a webrtcbin action signal that takes a promise; returns the reply."""
        fut = self.loop.create_future()

        def done(promise):
            reply = promise.get_reply()
            self.loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(reply))

        self.webrtc.emit(signal, *args, Gst.Promise.new_with_change_func(done))
        try:
            reply = await asyncio.wait_for(fut, STEP_TIMEOUT)
        except asyncio.TimeoutError:
            raise Fatal("%s: %s got no reply within %.0f s" % (self.name, signal, STEP_TIMEOUT))
        if reply is not None and reply.has_field("error"):
            raise Fatal("%s: %s failed: %s" % (self.name, signal, reply.get_value("error")))
        return reply

    async def stats(self):
        """get-stats as one string (the nested GstStructures serialized)."""
        try:
            reply = await self.call("get-stats", None)
        except Fatal:
            return ""
        return reply.to_string() if reply is not None else ""

    def ever_connected(self):
        return any(s in ("connected", "completed") for _, s in self.ice_states)

    def bad_states(self):
        return [(t, s) for t, s in self.ice_states if s in ("disconnected", "failed")]

    def poll_bus(self):
        while True:
            msg = self.bus.pop_filtered(Gst.MessageType.ERROR | Gst.MessageType.WARNING)
            if msg is None:
                return
            if msg.type == Gst.MessageType.ERROR:
                err, dbg = msg.parse_error()
                self.client.problem("%s pipeline error from %s: %s (%s)"
                                    % (self.name, msg.src.get_name(), err.message, dbg))
            else:
                err, dbg = msg.parse_warning()
                log("%s pipeline warning from %s: %s" % (self.name, msg.src.get_name(), err.message))


# ---------------------------------------------------------------------------- client

CLIENTS = []


def sent_lately(participant_id, secs=5.0):
    """Evidence for a 'disconnected': what that participant's webrtcbins sent lately."""
    for c in CLIENTS:
        if c.participant_id == participant_id:
            t = now()
            parts = ["%s sent %d RTCP compounds in the last %.0f s" % (
                pc.name, sum(1 for x in pc.rtcp_sent if x > t - secs), secs)
                for pc in (c.pub, c.sub)]
            return " (" + "; ".join(parts) + ")"
    return ""


AUDIO_CHAIN = (
    "audiotestsrc is-live=true wave=sine freq={freq} volume=0.3 ! audioconvert ! audioresample ! "
    "audio/x-raw,rate=48000,channels=1 ! opusenc bitrate=32000 ! rtpopuspay pt=111 ! "
    "capsfilter caps=application/x-rtp,media=audio,encoding-name=OPUS,payload=111,clock-rate=48000"
)
# No periodic keyframes: a keyframe request is the only reason for one.
VIDEO_CHAIN = (
    "videotestsrc is-live=true pattern={pattern} ! video/x-raw,width=320,height=240,framerate=15/1 ! "
    "vp8enc name=venc deadline=1 cpu-used=8 target-bitrate=300000 keyframe-max-dist=100000 ! "
    "rtpvp8pay pt=96 picture-id-mode=15-bit ! "
    "capsfilter caps=application/x-rtp,media=video,encoding-name=VP8,payload=96,clock-rate=90000"
)


class Client:
    def __init__(self, loop, name, room, freq, pattern):
        self.loop = loop
        self.name = name
        self.room = room
        self.freq = freq
        self.pattern = pattern
        self.ws = None
        self.participant_id = None
        self.events = []  # (t, message)
        self.problems = []
        self.leaving = False
        self.left_reason = None
        self.close_code = None
        self.closed = asyncio.Event()
        self.joined = loop.create_future()
        self.answer_waiter = None
        self.publish_waiters = {}  # cid -> future
        self.published = {}  # cid -> TrackInfo
        self.offers = asyncio.Queue()
        self.outbox = asyncio.Queue()
        self.answers_sent = 0
        self.server_ufrag = None  # of the last subscriber offer
        self.keyframe_requests = []  # times a force-key-unit reached our VP8 encoder
        self.decoded = {"audio": 0, "video": 0}
        self.received_pads = {"audio": [], "video": []}
        self.encoder = None
        self.source_pads = []
        self.pub = PeerConn(self, "publisher")
        self.sub = PeerConn(self, "subscriber")
        self.sub.webrtc.connect("pad-added", self._on_sub_pad)
        CLIENTS.append(self)

    def problem(self, msg):
        self.problems.append(msg)
        log("PROBLEM", msg)

    # ----- signaling

    def send(self, msg):
        if self.ws is None:
            return
        text = json.dumps(msg)
        short = msg["type"] + ("(%s)" % msg.get("target") if "target" in msg else "")
        if msg["type"] not in ("candidate",):
            log("%s -> %s" % (self.name, short))
        self.outbox.put_nowait(text)

    async def _writer(self):
        """Sends queued frames one after the other, in order."""
        while True:
            text = await self.outbox.get()
            try:
                await self.ws.send(text)
            except websockets.ConnectionClosed:
                pass

    async def connect(self):
        body = json.dumps({"room": self.room, "name": self.name}).encode()
        req = urllib.request.Request(BASE + "/demo/token", data=body,
                                     headers={"content-type": "application/json"})
        resp = await self.loop.run_in_executor(
            None, lambda: json.loads(urllib.request.urlopen(req, timeout=10).read()))
        url = resp["url"] + "?access_token=" + resp["token"]
        self.ws = await asyncio.wait_for(
            websockets.connect(url, ping_interval=None, max_size=2**22), STEP_TIMEOUT)
        asyncio.ensure_future(self._reader())
        asyncio.ensure_future(self._writer())
        asyncio.ensure_future(self._subscriber_worker())
        self.send({"type": "join"})
        try:
            joined = await asyncio.wait_for(asyncio.shield(self.joined), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            raise Fatal("%s: no joined within %.0f s" % (self.name, STEP_TIMEOUT))
        self.participant_id = joined["participant"]["participant_id"]
        log("%s joined as %s" % (self.name, self.participant_id))

    async def _reader(self):
        try:
            async for text in self.ws:
                self._on_message(json.loads(text))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            log("%s socket closed (code %s)" % (self.name, self.close_code))
            if not self.leaving:
                self.problem("%s: signaling socket closed (code %s) before leave"
                             % (self.name, self.close_code))
            self.closed.set()
            for fut in [self.answer_waiter, *self.publish_waiters.values()]:
                if fut is not None and not fut.done():
                    fut.set_exception(Fatal("%s: socket closed" % self.name))

    def _on_message(self, msg):
        self.events.append((now(), msg))
        typ = msg.get("type")
        if typ not in ("candidate", "active_speakers", "pong"):
            brief = {k: v for k, v in msg.items() if k not in ("type", "sdp", "participants", "participant")}
            log("%s <- %s %s" % (self.name, typ, json.dumps(brief) if brief else ""))
        if typ == "joined":
            if not self.joined.done():
                self.joined.set_result(msg)
        elif typ == "answer" and msg.get("target") == "publisher":
            if self.answer_waiter and not self.answer_waiter.done():
                self.answer_waiter.set_result(msg["sdp"])
            else:
                self.problem("%s: unexpected publisher answer" % self.name)
        elif typ == "offer" and msg.get("target") == "subscriber":
            self.offers.put_nowait(msg["sdp"])
        elif typ == "candidate":
            pc = self.pub if msg.get("target") == "publisher" else self.sub
            pc.add_remote_candidate(msg.get("candidate"))
        elif typ == "publish_accepted":
            self.published[msg["cid"]] = msg["track"]
            fut = self.publish_waiters.pop(msg["cid"], None)
            if fut and not fut.done():
                fut.set_result(msg["track"])
        elif typ == "participant_state":
            # With a reason it is a participant's last state as it leaves, not a fault.
            if msg.get("state") == "disconnected" and not msg.get("reason"):
                self.problem("%s: server reports participant %s disconnected at %.1f s%s"
                             % (self.name, msg.get("participant_id"), now(),
                                sent_lately(msg.get("participant_id"))))
        elif typ == "participant_left":
            if msg.get("reason") == "connection_lost":
                self.problem("%s: server removed participant %s with connection_lost at %.1f s"
                             % (self.name, msg.get("participant_id"), now()))
        elif typ == "left":
            self.left_reason = msg.get("reason")
            if msg.get("reason") != "client_left":
                self.problem("%s: server sent left with reason %s at %.1f s"
                             % (self.name, msg.get("reason"), now()))
        elif typ in ("ice_restart", "media_unreachable"):
            self.problem("%s: server sent %s %s at %.1f s (it thinks the media path is dead)"
                         % (self.name, typ, json.dumps(msg), now()))
        elif typ == "error":
            self.problem("%s: server error %s: %s" % (self.name, msg.get("code"), msg.get("message")))

    def messages(self, typ):
        return [m for _, m in self.events if m.get("type") == typ]

    # ----- subscriber: answer every server offer, in order

    async def _subscriber_worker(self):
        while True:
            sdp = await self.offers.get()
            try:
                await self._answer(sdp)
            except Fatal as e:
                self.problem(str(e))

    async def _answer(self, sdp):
        secs = sdp_sections(sdp)
        log("%s subscriber offer: %s" % (self.name, ", ".join(
            "%s %s %s msid=%s" % (s["mid"], s["kind"], s["direction"], s["msid_track"]) for s in secs)))
        await self.sub.call("set-remote-description",
                            session_description(GstWebRTC.WebRTCSDPType.OFFER, sdp))
        self.sub.remote_description_set()
        reply = await self.sub.call("create-answer", None)
        answer = reply.get_value("answer")
        await self.sub.call("set-local-description", answer)
        text = answer.sdp.as_text()
        self.send({"type": "answer", "target": "subscriber", "sdp": text})
        self.sub.sdp_was_sent(text)
        theirs, ours = ice_ufrag(sdp), ice_ufrag(text)
        log("%s subscriber answered (server ufrag %s, ours %s)" % (self.name, theirs, ours))
        if self.server_ufrag not in (None, theirs):
            # webrtcbin 1.22 keeps its own credentials and does not re-check: the restart
            # can only succeed through the server's own means.
            self.problem("%s: server restarted ICE on the subscriber connection at %.1f s "
                         "(ufrag %s -> %s; webrtcbin answered with its old ufrag %s)"
                         % (self.name, now(), self.server_ufrag, theirs, ours))
        self.server_ufrag = theirs
        self.answers_sent += 1

    def _on_sub_pad(self, webrtc, pad):
        if pad.direction != Gst.PadDirection.SRC:
            return
        trans = pad.get_property("transceiver")
        kind = "video" if trans.get_property("kind") == GstWebRTC.WebRTCKind.VIDEO else "audio"
        if kind == "video":
            desc = "queue ! rtpvp8depay ! vp8dec ! fakesink name=sink sync=false signal-handoffs=true"
        else:
            desc = "queue ! rtpopusdepay ! opusdec ! fakesink name=sink sync=false signal-handoffs=true"
        branch = Gst.parse_bin_from_description(desc, True)
        sink = branch.get_by_name("sink")
        sink.connect("handoff", self._on_decoded, kind)
        self.sub.pipeline.add(branch)
        branch.sync_state_with_parent()
        res = pad.link(branch.get_static_pad("sink"))
        mid = trans.get_property("mid")
        self.loop.call_soon_threadsafe(self._pad_added, kind, pad, mid, res)

    def _pad_added(self, kind, pad, mid, res):
        log("%s receives %s (mid %s), link %s" % (self.name, kind, mid, res.value_nick))
        self.received_pads[kind].append(pad)

    def _on_decoded(self, _sink, _buf, _pad, kind):
        self.decoded[kind] += 1  # GIL: plain increments are safe enough for counting

    # ----- publisher

    def add_source(self, kind):
        """Adds a test source for `kind` to the publisher pipeline, linked to a new webrtcbin sink pad."""
        desc = (AUDIO_CHAIN.format(freq=self.freq) if kind == "audio"
                else VIDEO_CHAIN.format(pattern=self.pattern))
        branch = Gst.parse_bin_from_description(desc, True)
        self.pub.pipeline.add(branch)
        pad = self.pub.webrtc.request_pad(self.pub.webrtc.get_pad_template("sink_%u"), None, None)
        pad.set_property("msid", "%s-stream" % self.name)
        pad.get_property("transceiver").set_property(
            "direction", GstWebRTC.WebRTCRTPTransceiverDirection.SENDONLY)
        if kind == "video":
            self.encoder = branch.get_by_name("venc")
            self.encoder.get_static_pad("src").add_probe(
                Gst.PadProbeType.EVENT_UPSTREAM, self._on_upstream_event)
        res = branch.get_static_pad("src").link(pad)
        if res != Gst.PadLinkReturn.OK:
            raise Fatal("%s: cannot link %s source to webrtcbin: %s" % (self.name, kind, res))
        branch.sync_state_with_parent()
        self.source_pads.append(pad)

    def sources_ready(self):
        """webrtcbin writes a source's SSRC and msid into the offer only once the
        payloader's caps (with the SSRC) have reached its sink pad."""
        for pad in self.source_pads:
            caps = pad.get_current_caps()
            if caps is None or not caps.get_structure(0).has_field("ssrc"):
                return False
        return True

    def _on_upstream_event(self, _pad, info):
        ev = info.get_event()
        if ev is not None and GstVideo.video_event_is_force_key_unit(ev):
            t = now()
            self.loop.call_soon_threadsafe(self._keyframe_request, t)
        return Gst.PadProbeReturn.OK

    def _keyframe_request(self, t):
        self.keyframe_requests.append(t)
        log("%s: keyframe request reached the VP8 encoder (#%d)" % (self.name, len(self.keyframe_requests)))

    async def negotiate_publisher(self):
        """One offer/answer round on the publisher connection; announces new tracks first."""
        if not await wait_for(self.sources_ready, STEP_TIMEOUT, "%s's sources to start" % self.name):
            raise Fatal("%s: the test sources did not reach webrtcbin within %.0f s"
                        % (self.name, STEP_TIMEOUT))
        reply = await self.pub.call("create-offer", None)
        offer = reply.get_value("offer")
        text = offer.sdp.as_text()
        for sec in sdp_sections(text):
            if sec["direction"] not in ("sendonly", "sendrecv"):
                continue
            cid = sec["msid_track"]
            require(bool(cid), "%s: webrtcbin puts an msid track id in its %s m-line"
                    % (self.name, sec["kind"]))
            if cid in self.published:
                continue
            fut = self.loop.create_future()
            self.publish_waiters[cid] = fut
            self.send({"type": "publish", "cid": cid, "source": MEDIA_SOURCE[sec["kind"]]})
            try:
                track = await asyncio.wait_for(fut, STEP_TIMEOUT)
            except asyncio.TimeoutError:
                raise Fatal("%s: no publish_accepted for %s within %.0f s" % (self.name, cid, STEP_TIMEOUT))
            log("%s: %s published as %s (cid %s)" % (self.name, sec["kind"], track["track_id"], cid))
        await self.pub.call("set-local-description", offer)
        self.answer_waiter = self.loop.create_future()
        self.send({"type": "offer", "target": "publisher", "sdp": text})
        self.pub.sdp_was_sent(text)
        try:
            answer = await asyncio.wait_for(self.answer_waiter, STEP_TIMEOUT)
        except asyncio.TimeoutError:
            raise Fatal("%s: no publisher answer within %.0f s" % (self.name, STEP_TIMEOUT))
        await self.pub.call("set-remote-description",
                            session_description(GstWebRTC.WebRTCSDPType.ANSWER, answer))
        self.pub.remote_description_set()

    def request_keyframe(self, all_headers):
        """Asks for a keyframe of the received video the way an application does: a
        force-key-unit event upstream into webrtcbin, whose RTP session turns it into
        RTCP feedback (PLI, or FIR when all_headers)."""
        pad = self.received_pads["video"][-1]
        ev = GstVideo.video_event_new_upstream_force_key_unit(Gst.CLOCK_TIME_NONE, all_headers, 0)
        return pad.get_peer().push_event(ev)

    async def leave(self):
        self.leaving = True
        self.send({"type": "leave"})
        try:
            await asyncio.wait_for(self.closed.wait(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            pass

    def start(self):
        for pc in (self.pub, self.sub):
            if pc.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                raise Fatal("%s: pipeline does not start" % pc.name)

    def stop(self):
        for pc in (self.pub, self.sub):
            pc.pipeline.set_state(Gst.State.NULL)


# ------------------------------------------------------------------------------ test


async def wait_for(cond, timeout, what, clients=()):
    """Polls `cond` every 100 ms until true or `timeout`; polls the pipelines' buses meanwhile."""
    deadline = time.monotonic() + timeout
    while True:
        for c in clients:
            c.pub.poll_bus()
            c.sub.poll_bus()
        if cond():
            return True
        if time.monotonic() >= deadline:
            log("timed out after %.0f s waiting for %s" % (timeout, what))
            return False
        await asyncio.sleep(0.1)


def feedback_counts(text):
    """Keyframe-request counters of every RTP source in a get-stats string (from the RTP
    session's source stats: sent-pli-count, recv-fir-count, ...), summed."""
    flat = text.replace("\\", "")
    out = {}
    for key in ("sent-pli-count", "sent-fir-count", "recv-pli-count", "recv-fir-count"):
        out[key] = sum(int(x) for x in re.findall(key + r"=\(uint\)(\d+)", flat))
    return out


async def keyframe_check(receiver, sender, all_headers, clients):
    kind = "FIR" if all_headers else "PLI"
    what = "%s's %s for %s's video reaches %s's VP8 encoder as a keyframe request" % (
        receiver.name, kind, sender.name, sender.name)
    # Let earlier requests (the server's own, when the subscription started) settle, so
    # that a request counted below is the answer to ours.
    def quiet():
        return not sender.keyframe_requests or now() - sender.keyframe_requests[-1] > 2.0
    await wait_for(quiet, 10, "no keyframe requests at %s for 2 s" % sender.name, clients)
    sent_key = "sent-fir-count" if all_headers else "sent-pli-count"
    recv_key = "recv-fir-count" if all_headers else "recv-pli-count"
    sent0 = feedback_counts(await receiver.sub.stats())[sent_key]
    recv0 = feedback_counts(await sender.pub.stats())[recv_key]
    for attempt in (1, 2):
        n0 = len(sender.keyframe_requests)
        ok = receiver.request_keyframe(all_headers)
        log("%s sends %s for %s's video (attempt %d, event handled: %s)"
            % (receiver.name, kind, sender.name, attempt, ok))
        if await wait_for(lambda: len(sender.keyframe_requests) > n0, KEYFRAME_TIMEOUT,
                          what, clients):
            sent = feedback_counts(await receiver.sub.stats())[sent_key] - sent0
            CHECKS.check(True, what, "")
            log("(%s's subscriber webrtcbin counted %d %s sent)" % (receiver.name, sent, kind))
            return
    sent = feedback_counts(await receiver.sub.stats())[sent_key] - sent0
    recv = feedback_counts(await sender.pub.stats())[recv_key] - recv0
    CHECKS.check(False, what, "nothing within %.0f s of two requests; meanwhile %s's subscriber "
                 "webrtcbin sent %d %s (stats %s) and %s's publisher webrtcbin received %d (%s)%s"
                 % (2 * KEYFRAME_TIMEOUT, receiver.name, sent, kind, sent_key, sender.name, recv,
                    recv_key, ": the server did not pass them on" if sent > 0 else ""))


async def run():
    loop = asyncio.get_running_loop()
    room = "webrtcbin-%d-%d" % (os.getpid(), int(time.time()))
    alice = Client(loop, "alice", room, 440, "ball")
    bob = Client(loop, "bob", room, 660, "smpte")
    clients = (alice, bob)
    pcs = [c.pub for c in clients] + [c.sub for c in clients]
    try:
        # Alice: microphone + camera in her first offer. Bob: microphone only for now.
        alice.add_source("audio")
        alice.add_source("video")
        bob.add_source("audio")
        for c in clients:
            c.start()
        await alice.connect()
        await bob.connect()
        await alice.negotiate_publisher()
        await bob.negotiate_publisher()

        await wait_for(lambda: all(pc.ever_connected() for pc in pcs), STEP_TIMEOUT,
                       "all four ICE connections", clients)
        for pc in pcs:
            require(pc.ever_connected(), "%s ICE connection state reaches connected" % pc.name,
                    "states seen: %s" % [s for _, s in pc.ice_states])
        t_connected = now()
        log("all four ICE connections up at %.1f s; holding for %.0f s" % (t_connected, HOLD))

        # Renegotiation: Bob adds his camera with a second publisher offer.
        n_answers = alice.answers_sent
        bob.add_source("video")
        await bob.negotiate_publisher()
        bob_tracks = {t["source"] for t in bob.published.values()}
        CHECKS.check(bob_tracks == {"microphone", "camera"},
                     "bob publishes a second track in a new publisher offer", str(bob_tracks))
        await wait_for(lambda: alice.answers_sent > n_answers, STEP_TIMEOUT,
                       "alice answers the server's renegotiated subscriber offer", clients)
        CHECKS.check(alice.answers_sent > n_answers,
                     "alice answers a subscriber offer that adds bob's camera")

        for c in clients:
            for kind in ("audio", "video"):
                got = await wait_for(lambda c=c, k=kind: c.decoded[k] > 0, STEP_TIMEOUT,
                                     "%s decoding %s" % (c.name, kind), clients)
                CHECKS.check(got, "%s decodes received %s" % (c.name, kind),
                             "no decoded buffer within %.0f s (pads: %s)"
                             % (STEP_TIMEOUT, {k: len(v) for k, v in c.received_pads.items()}))

        # Keyframe requests, both ways at once: Bob by PLI, Alice by FIR.
        checks = []
        if bob.received_pads["video"] and alice.encoder is not None:
            checks.append(keyframe_check(bob, alice, False, clients))
        if alice.received_pads["video"] and bob.encoder is not None:
            checks.append(keyframe_check(alice, bob, True, clients))
        await asyncio.gather(*checks)

        # Stay connected with media flowing, sampling the decoders every second.
        samples = []
        end = t_connected + HOLD
        while now() < end:
            for c in clients:
                c.pub.poll_bus()
                c.sub.poll_bus()
            samples.append((now(), {c.name: dict(c.decoded) for c in clients}))
            if any(c.closed.is_set() for c in clients):
                log("a signaling socket closed during the hold; stopping it early")
                break
            await asyncio.sleep(1.0)
        held = now() - t_connected
        CHECKS.check(held >= HOLD - 0.5, "both stay in the room for %.0f s after connecting" % HOLD,
                     "held only %.1f s" % held)
        # Media flows both ways through the whole hold: every decoder advanced in every
        # 5-second window.
        stalls = []
        for i, (t, counts) in enumerate(samples):
            later = [s for s in samples[i:] if s[0] >= t + 5.0]
            if not later:
                break
            t2, counts2 = later[0]
            for name in counts:
                for kind in ("audio", "video"):
                    if counts2[name][kind] <= counts[name][kind]:
                        stalls.append("%s %s between %.0f s and %.0f s" % (name, kind, t, t2))
        CHECKS.check(not stalls and len(samples) > 5,
                     "media flows both ways (every decoder advances in every 5 s window)",
                     "; ".join(stalls[:6]) or "too few samples")
        for c in clients:
            log("%s decoded so far: %s" % (c.name, c.decoded))
        if any(c.problems for c in clients):  # evidence for liveness problems
            for pc in pcs:
                log("%s sent RTCP at (s): %s"
                    % (pc.name, " ".join("%.1f" % x for x in pc.rtcp_sent)))

        for pc in pcs:
            CHECKS.check(not pc.bad_states(), "%s ICE never disconnected or failed" % pc.name,
                         "states: %s" % ["%.1fs %s" % x for x in pc.ice_states])

        # Leave: alice first, then bob.
        await alice.leave()
        CHECKS.check(alice.left_reason == "client_left", "alice's leave gives left client_left",
                     "left reason %s, close code %s" % (alice.left_reason, alice.close_code))
        CHECKS.check(alice.close_code == 1000, "the server closes alice's socket with 1000",
                     "close code %s" % alice.close_code)
        await wait_for(lambda: any(m.get("participant_id") == alice.participant_id
                                   for m in bob.messages("participant_left")), 5,
                       "bob sees alice leave", clients)
        reasons = [m.get("reason") for m in bob.messages("participant_left")
                   if m.get("participant_id") == alice.participant_id]
        CHECKS.check(reasons == ["client_left"], "bob gets participant_left client_left for alice",
                     str(reasons))
        await bob.leave()
        CHECKS.check(bob.left_reason == "client_left", "bob's leave gives left client_left",
                     "left reason %s, close code %s" % (bob.left_reason, bob.close_code))
    except Fatal as e:
        log("stopping early: %s" % e)
        if str(e) not in CHECKS.failed and not any(str(e) in f for f in CHECKS.failed):
            CHECKS.failed.append(str(e))
    finally:
        # Whatever happened, report what the server said about connection health.
        for c in clients:
            for pc in (c.pub, c.sub):
                pc.poll_bus()
        states = [(c.name, t, m) for c in clients for t, m in c.events
                  if m.get("type") == "participant_state" and m.get("state") == "disconnected"
                  and not m.get("reason")]
        CHECKS.check(not states, "the server never reports a participant disconnected",
                     "; ".join("%s heard %s disconnected at %.1f s" % (n, m["participant_id"], t)
                               for n, t, m in states))
        lost = [(c.name, t, m) for c in clients for t, m in c.events
                if m.get("type") in ("left", "participant_left") and m.get("reason") == "connection_lost"]
        CHECKS.check(not lost, "the server never removes a participant with connection_lost",
                     "; ".join("%s got %s connection_lost%s at %.1f s" % (
                         n, m["type"], " for " + m.get("participant_id", "") if m["type"] != "left" else "", t)
                         for n, t, m in lost))
        others = [p for c in clients for p in c.problems
                  if "disconnected" not in p and "connection_lost" not in p]
        CHECKS.check(not others, "no other problems (errors, unexpected closes, pipeline errors)",
                     "; ".join(others))
        for c in clients:
            if c.ws is not None and not c.closed.is_set():
                c.leaving = True
                await c.ws.close()
            c.stop()


def main():
    # If anything hangs (a GStreamer state change, a socket), show where and fail.
    faulthandler.dump_traceback_later(82, exit=True)
    Gst.init(None)
    log("GStreamer %s, websockets %s, server %s, hold %.0f s"
        % (Gst.version_string(), websockets.__version__, BASE, HOLD))
    try:
        asyncio.run(asyncio.wait_for(run(), 80))
    except asyncio.TimeoutError:
        CHECKS.failed.append("the test did not finish within 80 s")
    except Exception as e:  # a bug in the test or an API it relies on: fail, with the trace
        import traceback
        traceback.print_exc()
        CHECKS.failed.append("the test raised %s: %s" % (type(e).__name__, e))
    print()
    for f in CHECKS.failed:
        print("FAILED:", f)
    print("%d passed, %d failed" % (len(CHECKS.passed), len(CHECKS.failed)), flush=True)
    return 1 if CHECKS.failed else 0


if __name__ == "__main__":
    sys.exit(main())
