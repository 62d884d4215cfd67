// A minimal echo server on Pion (pion/webrtc v3, Debian's golang-github-pion-webrtc.v3-dev), the
// second anchor of the server peer benchmark: the same job as crates/peer/examples/echo.rs
// (POST /connect with a browser-style offer whose data channels are pre-negotiated with ids 0
// and 1; every message comes back on its channel), every peer on one UDP port (Pion's ICE UDP
// mux). With ECHO_SNAPSHOT_HZ=30 it plays the benchmark's game loop instead: every message
// counted as an input, and that many times a second a 256-byte unreliable snapshot to every
// peer (the framing's whole-message byte 0, 0xEE, the inputs so far as a big-endian u64,
// padding).
//
// Built by bench/peer.py in GOPATH mode against Debian's packaged sources (no module proxy
// here): GOPATH=/usr/share/gocode GO111MODULE=off go build.
//
// pion-echo HTTP_ADDR prints "echo http://ADDR/".
package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v2"
	"github.com/pion/webrtc/v3"
)

type game struct {
	inputs     uint64
	mu         sync.Mutex
	unreliable []*webrtc.DataChannel
}

func (g *game) run(hz int) {
	ticker := time.NewTicker(time.Second / time.Duration(hz))
	for range ticker.C {
		snapshot := make([]byte, 256)
		snapshot[1] = 0xEE
		binary.BigEndian.PutUint64(snapshot[2:10], atomic.LoadUint64(&g.inputs))
		g.mu.Lock()
		channels := append([]*webrtc.DataChannel(nil), g.unreliable...)
		g.mu.Unlock()
		for _, channel := range channels {
			_ = channel.Send(snapshot)
		}
	}
}

func main() {
	addr := "127.0.0.1:0"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		panic(err)
	}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: 0})
	if err != nil {
		panic(err)
	}
	settings := webrtc.SettingEngine{}
	settings.SetICEUDPMux(webrtc.NewICEUDPMux(nil, udp))
	settings.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	settings.SetIncludeLoopbackCandidate(true)
	// No mDNS: it opens a multicast socket per peer.
	settings.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithSettingEngine(settings))

	var play *game
	if hz, err := strconv.Atoi(os.Getenv("ECHO_SNAPSHOT_HZ")); err == nil && hz > 0 {
		play = &game{}
		go play.run(hz)
	}
	var keep sync.Mutex
	var peers []*webrtc.PeerConnection

	http.HandleFunc("/connect", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		pc, err := api.NewPeerConnection(webrtc.Configuration{})
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		negotiated := true
		for _, spec := range []struct {
			label   string
			id      uint16
			ordered bool
		}{{"reliable", 0, true}, {"unreliable", 1, false}} {
			id := spec.id
			ordered := spec.ordered
			init := &webrtc.DataChannelInit{Ordered: &ordered, Negotiated: &negotiated, ID: &id}
			if !ordered {
				zero := uint16(0)
				init.MaxRetransmits = &zero
			}
			channel, err := pc.CreateDataChannel(spec.label, init)
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			if play != nil {
				channel.OnMessage(func(webrtc.DataChannelMessage) { atomic.AddUint64(&play.inputs, 1) })
				if !ordered {
					play.mu.Lock()
					play.unreliable = append(play.unreliable, channel)
					play.mu.Unlock()
				}
			} else {
				echo := channel
				channel.OnMessage(func(message webrtc.DataChannelMessage) { _ = echo.Send(message.Data) })
			}
		}
		offer := webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(body)}
		if err := pc.SetRemoteDescription(offer); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		answer, err := pc.CreateAnswer(nil)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		gathered := webrtc.GatheringCompletePromise(pc)
		if err := pc.SetLocalDescription(answer); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		<-gathered
		keep.Lock()
		peers = append(peers, pc)
		keep.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"sdp": pc.LocalDescription().SDP})
	})
	fmt.Printf("echo http://%s/\n", listener.Addr())
	panic(http.Serve(listener, nil))
}
