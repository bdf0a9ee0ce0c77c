package infra

// An offline model of a Terraform module: its .tf files parsed with HCL, its
// variables' defaults and its locals evaluated where they can be, everything
// a provider would compute left unknown. The checks in checks_test.go read
// Terraform through it.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

type tfModule struct {
	dir    string
	src    map[string][]byte // file name -> contents
	blocks []*hclsyntax.Block
	vars   map[string]cty.Value // default, or unknown
	locals map[string]cty.Value
}

// unknown stands for a value only known after apply (an ARN, a URL).
type unknown struct{}

// loadDir parses every .tf file in dir.
func loadDir(dir string) (*tfModule, error) {
	return loadDirEdited(dir, nil)
}

// loadDirEdited parses dir after applying edits: file name -> [old, new]
// replacements, each of which must match. Tests use it to prove a check
// fails when an invariant is broken in the real files.
func loadDirEdited(dir string, edits map[string][][2]string) (*tfModule, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no .tf files", dir)
	}
	files := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files[filepath.Base(p)] = string(b)
	}
	for name, reps := range edits {
		s, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("edit: %s/%s does not exist", dir, name)
		}
		for _, r := range reps {
			if !strings.Contains(s, r[0]) {
				return nil, fmt.Errorf("edit: %q not found in %s/%s", r[0], dir, name)
			}
			s = strings.Replace(s, r[0], r[1], 1)
		}
		files[name] = s
	}
	return parseModule(dir, files)
}

// parseModule parses files (name -> HCL text) as one module.
func parseModule(dir string, files map[string]string) (*tfModule, error) {
	m := &tfModule{dir: dir, src: map[string][]byte{}, vars: map[string]cty.Value{}, locals: map[string]cty.Value{}}
	p := hclparse.NewParser()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fn := filepath.Join(dir, n)
		m.src[fn] = []byte(files[n])
		f, diags := p.ParseHCL([]byte(files[n]), fn)
		if diags.HasErrors() {
			return nil, fmt.Errorf("parse %s: %s", fn, diags.Error())
		}
		m.blocks = append(m.blocks, f.Body.(*hclsyntax.Body).Blocks...)
	}
	for _, b := range m.top("variable") {
		v := cty.DynamicVal
		if e := attr(b, "default"); e != nil {
			if val, diags := e.Value(nil); !diags.HasErrors() {
				v = val
			}
		}
		m.vars[b.Labels[0]] = v
	}
	for _, b := range m.top("locals") {
		for name := range b.Body.Attributes {
			m.locals[name] = cty.DynamicVal
		}
	}
	for range 4 { // locals may refer to locals
		for _, b := range m.top("locals") {
			for name, a := range b.Body.Attributes {
				m.locals[name] = m.value(a.Expr, nil)
			}
		}
	}
	return m, nil
}

// top returns the top-level blocks of a type whose labels start with labels.
func (m *tfModule) top(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type != typ || len(b.Labels) < len(labels) {
			continue
		}
		match := true
		for i, l := range labels {
			match = match && b.Labels[i] == l
		}
		if match {
			out = append(out, b)
		}
	}
	return out
}

func (m *tfModule) resources(typ string) []*hclsyntax.Block { return m.top("resource", typ) }

func (m *tfModule) resource(typ, name string) *hclsyntax.Block {
	if bs := m.top("resource", typ, name); len(bs) > 0 {
		return bs[0]
	}
	return nil
}

func (m *tfModule) variable(name string) *hclsyntax.Block {
	if bs := m.top("variable", name); len(bs) > 0 {
		return bs[0]
	}
	return nil
}

func attr(b *hclsyntax.Block, name string) hclsyntax.Expression {
	if b == nil {
		return nil
	}
	if a, ok := b.Body.Attributes[name]; ok {
		return a.Expr
	}
	return nil
}

// nested returns b's child blocks of a type, including the content of
// `dynamic "typ"` blocks.
func nested(b *hclsyntax.Block, typ string) []*hclsyntax.Block {
	if b == nil {
		return nil
	}
	var out []*hclsyntax.Block
	for _, c := range b.Body.Blocks {
		switch {
		case c.Type == typ:
			out = append(out, c)
		case c.Type == "dynamic" && len(c.Labels) == 1 && c.Labels[0] == typ:
			for _, cc := range c.Body.Blocks {
				if cc.Type == "content" {
					out = append(out, cc)
				}
			}
		}
	}
	return out
}

func nested1(b *hclsyntax.Block, typ string) *hclsyntax.Block {
	if bs := nested(b, typ); len(bs) > 0 {
		return bs[0]
	}
	return nil
}

// text is the source text of an expression; a quoted string loses its quotes.
func (m *tfModule) text(e hclsyntax.Expression) string {
	if e == nil {
		return ""
	}
	r := e.Range()
	src := m.src[r.Filename]
	if r.End.Byte > len(src) {
		return ""
	}
	s := strings.TrimSpace(string(src[r.Start.Byte:r.End.Byte]))
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	return s
}

// elems is the source text of each element of a list expression (or of the
// whole expression when it is not a list literal).
func (m *tfModule) elems(e hclsyntax.Expression) []string {
	if e == nil {
		return nil
	}
	if t, ok := e.(*hclsyntax.TupleConsExpr); ok {
		out := make([]string, 0, len(t.Exprs))
		for _, x := range t.Exprs {
			out = append(out, m.text(x))
		}
		return out
	}
	return []string{m.text(e)}
}

// refs lists the "type.name" of every resource or data source e refers to,
// and "var.x", "local.x", "module.x".
func refs(e hclsyntax.Expression) []string {
	if e == nil {
		return nil
	}
	var out []string
	for _, t := range e.Variables() {
		parts := []string{t.RootName()}
		for _, s := range t[1:] {
			a, ok := s.(hcl.TraverseAttr)
			if !ok || len(parts) == 3 {
				break
			}
			parts = append(parts, a.Name)
		}
		n := 2
		if parts[0] == "data" {
			n = 3
		}
		if len(parts) > n {
			parts = parts[:n]
		}
		out = append(out, strings.Join(parts, "."))
	}
	return out
}

func refersTo(e hclsyntax.Expression, ref string) bool {
	for _, r := range refs(e) {
		if r == ref {
			return true
		}
	}
	return false
}

// --- evaluation --------------------------------------------------------------

var functions = map[string]function.Function{
	"alltrue":    allTrueFunc,
	"can":        tryfunc.CanFunc,
	"coalesce":   stdlib.CoalesceFunc,
	"compact":    stdlib.CompactFunc,
	"concat":     stdlib.ConcatFunc,
	"contains":   stdlib.ContainsFunc,
	"flatten":    stdlib.FlattenFunc,
	"format":     stdlib.FormatFunc,
	"join":       stdlib.JoinFunc,
	"jsonencode": stdlib.JSONEncodeFunc,
	"keys":       stdlib.KeysFunc,
	"length":     stdlib.LengthFunc,
	"lower":      stdlib.LowerFunc,
	"merge":      stdlib.MergeFunc,
	"regex":      stdlib.RegexFunc,
	"sort":       stdlib.SortFunc,
	"startswith": startsWithFunc,
	"try":        tryfunc.TryFunc,
	"upper":      stdlib.UpperFunc,
}

var allTrueFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		result := cty.True
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if !v.IsKnown() {
				return cty.UnknownVal(cty.Bool), nil
			}
			if v.IsNull() || v.False() {
				result = cty.False
			}
		}
		return result, nil
	},
})

var startsWithFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "s", Type: cty.String}, {Name: "prefix", Type: cty.String}},
	Type:   function.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.BoolVal(strings.HasPrefix(args[0].AsString(), args[1].AsString())), nil
	},
})

// value evaluates e with variables at their defaults (or override), locals
// as evaluated, and everything else (resources, data, modules) unknown.
func (m *tfModule) value(e hclsyntax.Expression, override map[string]cty.Value) cty.Value {
	if e == nil {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	vars := map[string]cty.Value{}
	for k, v := range m.vars {
		vars[k] = v
	}
	for k, v := range override {
		vars[k] = v
	}
	ctx := &hcl.EvalContext{
		Variables: map[string]cty.Value{"var": cty.ObjectVal(vars), "local": cty.ObjectVal(m.locals)},
		Functions: functions,
	}
	for _, t := range e.Variables() {
		if r := t.RootName(); r != "var" && r != "local" {
			ctx.Variables[r] = cty.DynamicVal
		}
	}
	v, _ := e.Value(ctx)
	return v
}

// eval is value as plain Go (string, float64, bool, []any, map[string]any,
// nil, unknown{}). jsonencode(x) evaluates to x, so a policy or container
// definition stays readable even where some leaves are unknown.
func (m *tfModule) eval(e hclsyntax.Expression) any {
	if f, ok := e.(*hclsyntax.FunctionCallExpr); ok && f.Name == "jsonencode" && len(f.Args) == 1 {
		e = f.Args[0]
	}
	return toGo(m.value(e, nil))
}

func toGo(v cty.Value) any {
	if !v.IsKnown() {
		return unknown{}
	}
	if v.IsNull() {
		return nil
	}
	v, _ = v.Unmark()
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString()
	case t == cty.Number:
		f, _ := v.AsBigFloat().Float64()
		return f
	case t == cty.Bool:
		return v.True()
	case t.IsListType() || t.IsTupleType() || t.IsSetType():
		out := []any{}
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			out = append(out, toGo(e))
		}
		return out
	case t.IsMapType() || t.IsObjectType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			out[k.AsString()] = toGo(e)
		}
		return out
	}
	return unknown{}
}

func (m *tfModule) str(e hclsyntax.Expression) (string, bool) {
	s, ok := m.eval(e).(string)
	return s, ok
}

func (m *tfModule) num(e hclsyntax.Expression) (float64, bool) {
	f, ok := m.eval(e).(float64)
	return f, ok
}

func (m *tfModule) boolean(e hclsyntax.Expression) (bool, bool) {
	b, ok := m.eval(e).(bool)
	return b, ok
}

// strings returns the strings e evaluates to. Where that is not known (a
// conditional on an unknown value), it returns every string literal in e, so
// a forbidden value on either branch is still seen.
func (m *tfModule) strings(e hclsyntax.Expression) []string {
	if e == nil {
		return nil
	}
	if l, ok := m.eval(e).([]any); ok {
		var out []string
		known := true
		for _, x := range l {
			s, ok := x.(string)
			known = known && ok
			out = append(out, s)
		}
		if known {
			return out
		}
	}
	var out []string
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if l, ok := n.(*hclsyntax.LiteralValueExpr); ok && l.Val.Type() == cty.String {
			out = append(out, l.Val.AsString())
		}
		return nil
	})
	return out
}

// validationRejects reports whether some validation block of variable name
// rejects v. err is set when no validation block could decide.
func (m *tfModule) validationRejects(name string, v cty.Value) (bool, error) {
	b := m.variable(name)
	if b == nil {
		return false, fmt.Errorf("variable %q not declared", name)
	}
	vals := nested(b, "validation")
	if len(vals) == 0 {
		return false, fmt.Errorf("variable %q has no validation", name)
	}
	for _, val := range vals {
		c := m.value(attr(val, "condition"), map[string]cty.Value{name: v})
		if !c.IsKnown() || c.IsNull() || c.Type() != cty.Bool {
			return false, fmt.Errorf("variable %q: validation %q is not decidable offline", name, m.text(attr(val, "condition")))
		}
		if c.False() {
			return true, nil
		}
	}
	return false, nil
}

// varName returns x when e is exactly var.x.
func varName(e hclsyntax.Expression) (string, bool) {
	t, ok := e.(*hclsyntax.ScopeTraversalExpr)
	if !ok || len(t.Traversal) != 2 || t.Traversal.RootName() != "var" {
		return "", false
	}
	a, ok := t.Traversal[1].(hcl.TraverseAttr)
	return a.Name, ok
}

var interpolation = regexp.MustCompile(`\$\{[^}]*\}`)

// arnShape replaces every ${...} of an ARN template with ${}.
func arnShape(s string) string { return interpolation.ReplaceAllString(s, "${}") }
