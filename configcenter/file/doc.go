// Package file is a configcenter.Source that reads one local file and
// reloads it when it changes, for development and for tests of everything
// above the source.
//
// Changes are found by polling: every PollInterval the file's size and
// modification time are checked, and when either moved the content is
// read and compared by SHA-256, so a touch without a change is not a
// change, and a rewrite is seen even on file systems with coarse
// timestamps: while the modification time is within two seconds of the
// last read, every poll compares the content. No dependency on fsnotify.
// Write the file atomically (write a temporary file, then rename) so that
// a half-written file is never read.
package file
