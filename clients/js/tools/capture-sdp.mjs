// Captures a real Chromium data-channel offer and answer (plain and mDNS-hidden host candidates)
// into /tmp/sdp-plain.json and /tmp/sdp-mdns.json: how the compact SDP vectors in
// testdata/compact-sdp.json were taken. Needs a debug build of `switchboard`:
// `node clients/js/tools/capture-sdp.mjs`. Not a test.
import { launchBrowser, openPage, startServer } from "../test/e2e/harness.mjs";
const s = await startServer(); 
for (const mdns of [false, true]) {
const b = await launchBrowser({ mdns }); console.log(mdns); const p = await openPage(b, s);
const out = await p.evaluate(async () => {
  const room = await window.sb.joinRoom('/ws/cap'); const stunUrl = room.iceServers[0].urls; room.close();
  const gather = (pc) => new Promise((r) => { if (pc.iceGatheringState === "complete") r(); pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && r(); });
  const a = new RTCPeerConnection({ iceServers: [{ urls: stunUrl }] });
  a.createDataChannel("x", { negotiated: true, id: 0 });
  await a.setLocalDescription(await a.createOffer()); await gather(a);
  const b = new RTCPeerConnection({ iceServers: [{ urls: stunUrl }] });
  b.createDataChannel("x", { negotiated: true, id: 0 });
  await b.setRemoteDescription(a.localDescription); await b.setLocalDescription(await b.createAnswer()); await gather(b);
  return { offer: a.localDescription.sdp, answer: b.localDescription.sdp };
});
(await import("node:fs")).writeFileSync(`/tmp/sdp-${mdns ? "mdns" : "plain"}.json`, JSON.stringify(out));
await b.close();
}
await s.stop();
