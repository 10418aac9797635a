// Package stream is placeholder
package stream
