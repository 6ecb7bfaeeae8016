package csvbatch

// Desyncs returns how many records the framer and csv.Reader disagreed on.
// It must always be 0; the tests check that it is.
func Desyncs(r *Reader) int { return r.desyncs }
