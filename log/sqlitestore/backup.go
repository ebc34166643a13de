package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"github.com/keycommit/keycommit/log/durable"
	"os"
)

// Backup writes a consistent copy of the database to path, which must
// not exist, while the log may go on serving and appending: SQLite's
// VACUUM INTO reads one snapshot of the database in a read transaction
// and writes a complete, compacted database file. The copy is written
// under path+".partial", synced and then renamed to path, so path is
// never a half-written database. The copy opens with Open, as the log's
// database (log.db) beside the log's key files.
func (s *Store) Backup(ctx context.Context, path string) (int64, error) {
	if _, err := os.Lstat(path); err == nil {
		return 0, fmt.Errorf("refusing to overwrite %s", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return 0, err
	}
	tmp := path + ".partial"
	os.Remove(tmp)
	if _, err := s.db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("couldn't back up the log database: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		os.Remove(tmp)
		return 0, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("couldn't write the backup: %w", err)
	}
	if _, err := os.Lstat(path); err == nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("refusing to overwrite %s", path)
	}
	if err := durable.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("couldn't move the backup into place: %w", err)
	}
	return fi.Size(), nil
}
