package events

import "encoding/json"

// Envelope is the EventBridge event as a rule delivers it to SQS.
type Envelope struct {
	Version    string          `json:"version"`
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Account    string          `json:"account"`
	Time       string          `json:"time"`
	Region     string          `json:"region"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

// SymLogEntry is Sym's published log format (Sym's SymLogEntry JSON schema).
// Only what iamjit reads is typed; unknown fields are ignored.
type SymLogEntry struct {
	ID     string    `json:"id"`
	Meta   SymMeta   `json:"meta"`
	Run    SymRun    `json:"run"`
	Event  SymEvent  `json:"event"`
	Actor  SymActor  `json:"actor"`
	Fields SymFields `json:"fields"`
	Type   string    `json:"type"`
}

type SymMeta struct {
	SchemaVersion int `json:"schema_version"`
}

type SymRun struct {
	SRN    string              `json:"srn"`
	Parent string              `json:"parent,omitempty"`
	Flow   string              `json:"flow"`
	Actors map[string]SymActor `json:"actors,omitempty"`
}

type SymEvent struct {
	SRN       string `json:"srn"`
	Type      string `json:"type"`
	Template  string `json:"template"`
	Timestamp string `json:"timestamp"`
	Channel   string `json:"channel"`
}

type SymActor struct {
	User     string `json:"user"`
	Name     string `json:"name"`
	Username string `json:"username"`
}

// SymFields are the approval template's fields. Duration stays raw so that a
// string or a fraction is reported as a bad duration rather than failing the
// whole decode.
type SymFields struct {
	Reason   string          `json:"reason,omitempty"`
	Duration json.RawMessage `json:"duration,omitempty"`
	Target   *SymTarget      `json:"target,omitempty"`
	TargetID string          `json:"target_id,omitempty"`
}

type SymTarget struct {
	Name     string            `json:"name"`
	SRN      string            `json:"srn"`
	Type     string            `json:"type"`
	Label    string            `json:"label"`
	Settings map[string]string `json:"settings"`
}
