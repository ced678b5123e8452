package config

// SkipComponents leaves the components' own validation out of l's Load, for tests of the
// settings table alone (with SIMULATE unset, the defaults lack the providers' keys).
func SkipComponents(l *Loader) { l.skipComponents = true }
