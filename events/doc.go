// Package events holds the wire formats iamjit speaks: Sym's SymLogEntry as it
// arrives on SQS (inside an EventBridge envelope or bare), the Request iamjit
// derives from it, and the result events it publishes back to EventBridge.
//
// Decode only checks that a body is a well-formed SymLogEntry with an id; what
// the request may do (group path, duration, identity) is decided in grants.
package events
