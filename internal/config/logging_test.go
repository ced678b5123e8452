package config_test

import (
	"slices"
	"testing"

	"github.com/callagent/resilience/internal/config"
	"github.com/callagent/resilience/internal/logging"
)

// The LOG_LEVEL and LOG_FORMAT values the loader accepts are the ones package logging
// accepts, so a loaded configuration never fails in logging.New.
func TestLogValuesMatchLogging(t *testing.T) {
	t.Parallel()
	if !slices.Equal(config.LogLevels, logging.Levels) {
		t.Errorf("config.LogLevels = %v, logging.Levels = %v", config.LogLevels, logging.Levels)
	}
	if !slices.Equal(config.LogFormats, logging.Formats) {
		t.Errorf("config.LogFormats = %v, logging.Formats = %v", config.LogFormats, logging.Formats)
	}
	if config.LogFormatHuman != logging.FormatHuman || config.LogFormatJSON != logging.FormatJSON {
		t.Errorf("format constants differ: config %q, %q; logging %q, %q",
			config.LogFormatHuman, config.LogFormatJSON, logging.FormatHuman, logging.FormatJSON)
	}
	if d := config.Defaults().Log.Format; d != logging.Formats[0] {
		t.Errorf("LOG_FORMAT default %q, want logging's default %q", d, logging.Formats[0])
	}
}
