package console

import (
	"errors"
	"io"
	"io/fs"
	"mime/multipart"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// spoolPattern names the spooled uploads, so CleanSpool removes nothing
// else that the directory may hold.
const spoolPattern = "upload-*.csv"

// spool copies an uploaded file to a new file of Config.SpoolDir (0700,
// the file 0600: it holds personal data), rewound. The import removes it
// when it ends; CleanSpool removes those a crash left behind.
func (c *Console) spool(part *multipart.Part) (*os.File, error) {
	dir := c.cfg.SpoolDir
	if dir == "" {
		dir = os.TempDir()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, spoolPattern)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(tmp, part); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return tmp, nil
}

// CleanSpool removes the spooled uploads of dir last written before
// before: serve calls it at start with now - enrol.BatchStall, as the
// imports reading them died with their process (enrol.Batch.Stalled). It
// returns how many it removed; a missing dir is no error.
func CleanSpool(dir string, before time.Time) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), "upload-") || !strings.HasSuffix(e.Name(), ".csv") {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // its import just ended
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !info.ModTime().Before(before) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
			continue
		}
		n++
	}
	return n, errors.Join(errs...)
}
