package elevenlabs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/callagent/resilience/internal/contact"
	"github.com/callagent/resilience/internal/fault"
	"github.com/callagent/resilience/internal/provider/elevenlabs"
	"github.com/callagent/resilience/internal/provider/httpx"
	"github.com/callagent/resilience/internal/secret"
)

// The worker builds one shared httpx.Client and one ElevenLabs client per configured voice;
// OnConcurrencyLimit sizes the provider's bulkhead to the plan.
func ExampleClient_Synthesize() {
	// A stand-in for https://api.elevenlabs.io.
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("xi-api-key") != "xi-example-key" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "audio/mpeg")
		w.Header().Set("maximum-concurrent-requests", "5")
		w.Header().Set("character-cost", "10")
		w.Header().Set("request-id", "4f1c0e2d")
		_, _ = w.Write([]byte("ID3 fake mp3"))
	}))
	defer api.Close()
	hc, err := httpx.New(httpx.Options{Version: "v1.0.0"})
	if err != nil {
		panic(err)
	}
	defer hc.CloseIdleConnections()

	tts, err := elevenlabs.New(elevenlabs.Options{
		APIKey:  secret.Secret("xi-example-key"),
		VoiceID: "JBFqnCBsd6RMkjVDRZzb",
		BaseURL: api.URL,
		HTTP:    hc,
		OnConcurrencyLimit: func(n int) {
			fmt.Println("the plan allows", n, "concurrent requests") // guard.Bulkhead().SetLimit(n)
		},
	})
	if err != nil {
		panic(err)
	}
	audio, err := tts.Synthesize(context.Background(), contact.Contact{ID: "c1"}, "Hello Ada!")
	fmt.Println(len(audio.Data), audio.Format, err)
	// What the call cost and where to find it in ElevenLabs' logs.
	fmt.Println(audio.Model, audio.Characters, audio.RequestID)

	// The same voice under a second key is a fallback with its own name, hence its own breaker.
	fallback, _ := elevenlabs.New(elevenlabs.Options{
		Name: "ElevenLabs (fallback)", APIKey: secret.Secret("xi-other-key"), VoiceID: "JBFqnCBsd6RMkjVDRZzb",
		BaseURL: api.URL, HTTP: hc,
	})
	_, err = fallback.Synthesize(context.Background(), contact.Contact{ID: "c1"}, "Hello Ada!")
	fmt.Println(err, fault.KindOf(err))
	// Output:
	// the plan allows 5 concurrent requests
	// 12 mp3_44100_128 <nil>
	// eleven_flash_v2_5 10 4f1c0e2d
	// ElevenLabs (fallback): authentication (HTTP 401) authentication
}

// A missing key is named by its Options field (internal/config maps it to the setting).
func ExampleNew() {
	_, err := elevenlabs.New(elevenlabs.Options{VoiceID: "JBFqnCBsd6RMkjVDRZzb"})
	fmt.Println(err)
	// Output:
	// APIKey is required when SIMULATE is unset
}

// A fallback voice must produce what the primary produces: compare codecs and sample rates.
func ExampleCodec() {
	primary, fallback := "ulaw_8000", "mp3_22050_32"
	if elevenlabs.Codec(primary) != elevenlabs.Codec(fallback) || elevenlabs.SampleRate(primary) != elevenlabs.SampleRate(fallback) {
		fmt.Printf("fallback gives %s at %d Hz, primary %s at %d Hz\n",
			elevenlabs.Codec(fallback), elevenlabs.SampleRate(fallback), elevenlabs.Codec(primary), elevenlabs.SampleRate(primary))
	}
	fmt.Println(elevenlabs.Codec("flac") == "")
	// Output:
	// fallback gives mp3 at 22050 Hz, primary ulaw at 8000 Hz
	// true
}
