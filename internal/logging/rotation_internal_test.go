package logging

import (
	"io"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"
)

// TestRotationConfigured checks that the options reach lumberjack; lumberjack's
// own rotation is its business, not ours.
func TestRotationConfigured(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "logs", "error_recovery.log")
	logger, closer, err := New(Options{File: file, Console: io.Discard, MaxSizeMB: 7, MaxBackups: 3, MaxAgeDays: 11})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closer.Close() })
	for _, level := range []logrus.Level{logrus.DebugLevel, logrus.InfoLevel, logrus.WarnLevel, logrus.ErrorLevel} {
		hooks := logger.Hooks[level]
		if len(hooks) != 1 {
			t.Fatalf("level %v has %d hooks, want the file hook only", level, len(hooks))
		}
		h, ok := hooks[0].(*fileHook)
		if !ok {
			t.Fatalf("hook is %T, want *fileHook", hooks[0])
		}
		if h != closer {
			t.Errorf("closer is not the file hook")
		}
		out := h.out
		if out.Filename != file || out.MaxSize != 7 || out.MaxBackups != 3 || out.MaxAge != 11 || out.Compress || out.LocalTime {
			t.Errorf("lumberjack = {Filename:%q MaxSize:%d MaxBackups:%d MaxAge:%d Compress:%v LocalTime:%v}, want {%q 7 3 11 false false}",
				out.Filename, out.MaxSize, out.MaxBackups, out.MaxAge, out.Compress, out.LocalTime, file)
		}
	}
}
