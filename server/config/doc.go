// Package config loads kmsd's configuration: a YAML file plus KMSD_*
// environment overrides (Load, Parse, EnvNames), the defaults (Defaults)
// and their validation (Config.Validate). It is configuration only: the
// running kmsd is assembled from a Config by package server/kmsd.
package config
