package changelog

// Remembered is how many entries l holds a change of.
func Remembered[K comparable](l *Log[K]) int { return len(l.last) }
