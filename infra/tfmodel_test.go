package infra

// An offline model of a Terraform module: its .tf files parsed with HCL, its
// variables' defaults and its locals evaluated where they can be, everything
// a provider would compute left unknown. The checks in checks_test.go read
// Terraform through it.

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

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
	files  map[string]string  // its own files: base name -> contents (after edits)
	src    map[string][]byte  // file name -> contents
	blocks []*hclsyntax.Block // as written
	// instances are the resource and data blocks, one a resource instance:
	// a block with for_each whose keys are known offline stands for each
	// instance (see expand), any other block for itself.
	instances []*hclsyntax.Block
	vars      map[string]cty.Value // default (or as with set it), else unknown
	locals    map[string]cty.Value
	// known are values with gives the roots of references that are
	// otherwise unknown offline: a resource type's instances, by name.
	known map[string]cty.Value
	// childEdits are loadDirEdited's edits of other directories' files, by
	// path: they apply when a module call here loads that directory.
	childEdits map[string][][2]string
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
	own, children := map[string][][2]string{}, map[string][][2]string{}
	for name, reps := range edits {
		if strings.Contains(name, "/") {
			children[filepath.Join(dir, name)] = reps
		} else {
			own[name] = reps
		}
	}
	for name, reps := range own {
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
	m, err := parseModule(dir, files)
	if err != nil {
		return nil, err
	}
	m.childEdits = children
	return m, nil
}

// with is m as configured with vars (variable name -> value) instead of the
// defaults, and known: values of references otherwise unknown offline, by
// root (a resource type: its instances by name, e.g.
// aws_secretsmanager_secret = {accounts = [{arn = "..."}]}). Its locals and
// for_each instances are evaluated again with them.
func (m *tfModule) with(vars, known map[string]cty.Value) (*tfModule, error) {
	w, err := parseModuleWith(m.dir, m.files, vars, known)
	if err != nil {
		return nil, err
	}
	w.childEdits = m.childEdits
	return w, nil
}

// child loads the module in dir (a local module call's source), with the
// edits loadDirEdited was given for its files.
func (m *tfModule) child(dir string) (*tfModule, error) {
	edits := map[string][][2]string{}
	for path, reps := range m.childEdits {
		if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
			edits[rel] = reps
		}
	}
	return loadDirEdited(dir, edits)
}

// parseModule parses files (name -> HCL text) as one module.
func parseModule(dir string, files map[string]string) (*tfModule, error) {
	return parseModuleWith(dir, files, nil, nil)
}

// parseModuleWith is parseModule with variables set to vars and references
// known (see tfModule.with).
func parseModuleWith(dir string, files map[string]string, vars, known map[string]cty.Value) (*tfModule, error) {
	m := &tfModule{dir: dir, files: files, src: map[string][]byte{}, vars: map[string]cty.Value{}, locals: map[string]cty.Value{}, known: known}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fn := filepath.Join(dir, n)
		m.src[fn] = []byte(files[n])
		blocks, err := parseFile(fn, files[n])
		if err != nil {
			return nil, err
		}
		m.blocks = append(m.blocks, blocks...)
	}
	for _, b := range m.top("variable") {
		v := cty.DynamicVal
		if e := attr(b, "default"); e != nil {
			if val, diags := e.Value(nil); !diags.HasErrors() {
				v = val
			}
		}
		if set, ok := vars[b.Labels[0]]; ok {
			v = set
		}
		m.vars[b.Labels[0]] = v
	}
	for name := range vars {
		if _, ok := m.vars[name]; !ok {
			return nil, fmt.Errorf("%s: with: variable %q is not declared", dir, name)
		}
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
	for _, b := range m.blocks {
		if b.Type == "resource" || b.Type == "data" {
			m.instances = append(m.instances, m.expand(b, &scope{mod: m})...)
		}
	}
	return m, nil
}

// parsed holds the top-level blocks of every file parsed, by file name and
// contents (parseKey): the broken-copy tests load the same files, edited in
// one place, hundreds of times, and parsing is most of their time. The
// blocks are shared, so nothing may change them: the model copies what it
// substitutes into (subst).
var parsed sync.Map

type parseKey struct{ name, text string }

// parseFile parses the HCL text of the file named fn, once per contents.
func parseFile(fn, text string) ([]*hclsyntax.Block, error) {
	k := parseKey{fn, text}
	if b, ok := parsed.Load(k); ok {
		return b.([]*hclsyntax.Block), nil
	}
	f, diags := hclparse.NewParser().ParseHCL([]byte(text), fn)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %s", fn, diags.Error())
	}
	b, _ := parsed.LoadOrStore(k, []*hclsyntax.Block(f.Body.(*hclsyntax.Body).Blocks))
	return b.([]*hclsyntax.Block), nil
}

// top returns the top-level blocks of a type whose labels start with labels;
// for resources and data sources, their instances (instance names carry
// their key: `queue["main"]`).
func (m *tfModule) top(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	blocks := m.blocks
	if typ == "resource" || typ == "data" {
		blocks = m.instances
	}
	for _, b := range blocks {
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

// rendered is a child block as Terraform renders it: the block itself, or
// one instance of a dynamic block.
type rendered struct {
	*hclsyntax.Block
	// off: a dynamic block's content, whose for_each is known offline to be
	// empty: Terraform renders nothing of it with these values.
	off bool
}

// render returns b's child blocks of type typ as Terraform renders them
// with the module's values (its variables' defaults, or as with set them):
// a dynamic "typ" block is one block a for_each element where the elements'
// expressions are known offline (the iterator replaced by the element), and
// its content as written where they are not, off where for_each is known
// to be empty.
func (m *tfModule) render(b *hclsyntax.Block, typ string) []rendered {
	if b == nil {
		return nil
	}
	var out []rendered
	for _, c := range b.Body.Blocks {
		if c.Type == typ {
			out = append(out, rendered{c, false})
			continue
		}
		if c.Type != "dynamic" || len(c.Labels) != 1 || c.Labels[0] != typ {
			continue
		}
		content := nested1(&hclsyntax.Block{Body: c.Body}, "content")
		if content == nil {
			continue
		}
		iter := typ
		if e := attr(c, "iterator"); e != nil {
			iter = hcl.ExprAsKeyword(e)
		}
		fe := attr(c, "for_each")
		if items, ok := m.items(fe); ok {
			if insts, ok := m.instancesOf(content, typ, iter, items); ok {
				if len(insts) == 0 {
					out = append(out, rendered{content, true})
				}
				out = append(out, insts...)
				continue
			}
		}
		v := m.value(fe, nil)
		empty := v.IsKnown() && !v.IsNull() && v.CanIterateElements() && v.LengthInt() == 0
		out = append(out, rendered{content, empty})
	}
	return out
}

// instancesOf is a dynamic block's content once for each of items, with
// iter.key and iter.value replaced; ok is false when one cannot be.
func (m *tfModule) instancesOf(content *hclsyntax.Block, typ, iter string, items []item) ([]rendered, bool) {
	var out []rendered
	for _, it := range items {
		body, err := m.substBody(content.Body, &scope{mod: m, each: &it, iter: iter})
		if err != nil {
			return nil, false
		}
		out = append(out, rendered{&hclsyntax.Block{Type: typ, Body: body, TypeRange: content.TypeRange, OpenBraceRange: content.OpenBraceRange, CloseBraceRange: content.CloseBraceRange}, false})
	}
	return out, true
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
	if t, ok := e.(*hclsyntax.ScopeTraversalExpr); ok {
		// Rendered, so right for a traversal expand built too; any other
		// expression expand built shows the source it was built from.
		return traversalString(t.Traversal)
	}
	if t, ok := e.(*hclsyntax.TemplateExpr); ok && substituted(t) {
		return m.renderTemplate(t)
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

// substituted reports whether expand put parts into t that were not written
// there: its source text would no longer show what it is.
func substituted(t *hclsyntax.TemplateExpr) bool {
	r := t.Range()
	for _, p := range t.Parts {
		pr := p.Range()
		if pr.Filename != r.Filename || pr.Start.Byte < r.Start.Byte || pr.End.Byte > r.End.Byte {
			return true
		}
		if pt, ok := p.(*hclsyntax.TemplateExpr); ok && substituted(pt) {
			return true
		}
	}
	return false
}

// renderTemplate writes a template as its source would be after expand's
// substitution: literal parts escaped as HCL writes them, a template part
// inline, any other part as ${its text}.
func (m *tfModule) renderTemplate(t *hclsyntax.TemplateExpr) string {
	var b strings.Builder
	for _, p := range t.Parts {
		switch x := p.(type) {
		case *hclsyntax.LiteralValueExpr:
			if x.Val.Type() == cty.String && x.Val.IsKnown() && !x.Val.IsNull() {
				b.WriteString(strings.NewReplacer("${", "$${", "%{", "%%{").Replace(x.Val.AsString()))
				continue
			}
			b.WriteString("${" + m.text(x) + "}")
		case *hclsyntax.TemplateExpr:
			b.WriteString(m.renderTemplate(x))
		default:
			b.WriteString("${" + m.text(x) + "}")
		}
	}
	return b.String()
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

// refs lists the "type.name" of every resource or data source e refers to
// (`type.name["key"]` for an instance of one with for_each), and "var.x",
// "local.x", "module.x".
func refs(e hclsyntax.Expression) []string {
	if e == nil {
		return nil
	}
	var out []string
	for _, t := range e.Variables() {
		n := 2
		if t.RootName() == "data" {
			n = 3
		}
		end := 1
		for end < len(t) && end < n {
			if _, ok := t[end].(hcl.TraverseAttr); !ok {
				break
			}
			end++
		}
		if end == n && end < len(t) && t.RootName() != "var" && t.RootName() != "local" && t.RootName() != "module" {
			if i, ok := t[end].(hcl.TraverseIndex); ok && i.Key.IsKnown() && !i.Key.IsNull() {
				end++
			}
		}
		out = append(out, traversalString(t[:end]))
	}
	return out
}

// traversalString is a traversal as Terraform writes an address:
// aws_sqs_queue.main.arn, queue["main"], alarm[0].
func traversalString(t hcl.Traversal) string {
	var b strings.Builder
	for _, s := range t {
		switch s := s.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			b.WriteString("[" + keyString(s.Key) + "]")
		default:
			b.WriteString("[*]")
		}
	}
	return b.String()
}

// keyString is an instance key as it stands in an address: "main" or 0.
func keyString(k cty.Value) string {
	if !k.IsKnown() || k.IsNull() {
		return "?"
	}
	switch k.Type() {
	case cty.String:
		return strconv.Quote(k.AsString())
	case cty.Number:
		return k.AsBigFloat().Text('f', -1)
	}
	return "?"
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
	"distinct":   stdlib.DistinctFunc,
	"flatten":    stdlib.FlattenFunc,
	"format":     stdlib.FormatFunc,
	"join":       stdlib.JoinFunc,
	"jsonencode": stdlib.JSONEncodeFunc,
	"keys":       stdlib.KeysFunc,
	"length":     stdlib.LengthFunc,
	"lower":      stdlib.LowerFunc,
	"merge":      stdlib.MergeFunc,
	// Sensitivity is not modelled: a value is what it is.
	"nonsensitive": identityFunc,
	"sensitive":    identityFunc,
	"regex":        stdlib.RegexFunc,
	"sort":         stdlib.SortFunc,
	"startswith":   startsWithFunc,
	"try":          tryfunc.TryFunc,
	"upper":        stdlib.UpperFunc,
	"values":       stdlib.ValuesFunc,
	"tostring":     stdlib.MakeToFunc(cty.String),
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

var identityFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "v", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowNull: true, AllowDynamicType: true}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
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
			if k, ok := m.known[r]; ok {
				ctx.Variables[r] = k
			}
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
	var conditions []hcl.Range // what a conditional tests is none of its values
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		if c, ok := n.(*hclsyntax.ConditionalExpr); ok {
			conditions = append(conditions, c.Condition.Range())
		}
		return nil
	})
	hclsyntax.VisitAll(e, func(n hclsyntax.Node) hcl.Diagnostics {
		l, ok := n.(*hclsyntax.LiteralValueExpr)
		if !ok || l.Val.Type() != cty.String {
			return nil
		}
		for _, r := range conditions {
			if r.Filename == l.SrcRange.Filename && r.ContainsOffset(l.SrcRange.Start.Byte) {
				return nil
			}
		}
		out = append(out, l.Val.AsString())
		return nil
	})
	return out
}

// knownStrings returns the strings e evaluates to when every one is known
// offline, else nil.
func (m *tfModule) knownStrings(e hclsyntax.Expression) []string {
	l, ok := m.eval(e).([]any)
	if !ok {
		return nil
	}
	out := []string{}
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
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

// --- instances: for_each expanded, module calls followed ------------------------

// scope is what subst replaces. each is the instance being expanded; names
// are a for expression's symbols. With bind (the body of a module call's
// module, seen from the caller), var.x is the call's argument (vars, already
// in the caller's terms) and local.x the module's local, itself substituted.
type scope struct {
	mod  *tfModule
	each *item
	// iter is the name each goes by: "each" (a resource's for_each) when
	// empty, else a dynamic block's iterator.
	iter   string
	names  map[string]hclsyntax.Expression // nil value: shadowed by an inner for
	bind   bool
	vars   map[string]hclsyntax.Expression
	module string // address prefix of the instances: "module.alarms."
	depth  int
}

// item is one element of a for_each: its key and the expression of its value.
type item struct {
	key string
	val hclsyntax.Expression
}

// expand returns the instances of block b of module sc.mod: one a key when
// it has a for_each whose keys are known offline (a literal map, a local,
// merge() of those, a for expression over one, toset() of literal strings;
// or whatever a module call passes in), each with each.key and each.value
// replaced by that key and value; otherwise b itself. Under a module call
// (sc.bind) var.x and local.x are replaced too, and the keys are resolved
// in m's terms, m being the module the call is seen from.
func (m *tfModule) expand(b *hclsyntax.Block, sc *scope) []*hclsyntax.Block {
	if fe := attr(b, "for_each"); fe != nil {
		if e, err := sc.mod.subst(fe, sc); err == nil {
			if items, ok := m.items(e); ok {
				var out []*hclsyntax.Block
				for _, it := range items {
					isc := *sc
					isc.each = &it
					ib, err := sc.mod.substBlock(b, &isc, b.Labels[1]+"["+strconv.Quote(it.key)+"]")
					if err != nil {
						return []*hclsyntax.Block{b}
					}
					out = append(out, ib)
				}
				return out
			}
		}
	}
	if sc.bind {
		if ib, err := sc.mod.substBlock(b, sc, b.Labels[1]); err == nil {
			return []*hclsyntax.Block{ib}
		}
	}
	return []*hclsyntax.Block{b}
}

// items resolves a for_each expression (in m's own terms) to its elements.
func (m *tfModule) items(e hclsyntax.Expression) ([]item, bool) {
	switch x := e.(type) {
	case *hclsyntax.ObjectConsExpr:
		var out []item
		for _, it := range x.Items {
			k, ok := m.objectKey(it.KeyExpr)
			if !ok {
				return nil, false
			}
			out = append(out, item{k, it.ValueExpr})
		}
		return out, true
	case *hclsyntax.TupleConsExpr: // a dynamic block's list: keys are indexes
		var out []item
		for i, el := range x.Exprs {
			out = append(out, item{strconv.Itoa(i), el})
		}
		return out, true
	case *hclsyntax.ConditionalExpr:
		c, ok := m.boolean(x.Condition)
		if !ok {
			return nil, false
		}
		if c {
			return m.items(x.TrueResult)
		}
		return m.items(x.FalseResult)
	case *hclsyntax.ScopeTraversalExpr:
		if len(x.Traversal) == 2 && x.Traversal.RootName() == "local" {
			if a, ok := x.Traversal[1].(hcl.TraverseAttr); ok {
				if le := m.localExpr(a.Name); le != nil {
					return m.items(le)
				}
			}
		}
	case *hclsyntax.FunctionCallExpr:
		switch {
		case x.Name == "merge" && !x.ExpandFinal:
			var out []item
			for _, a := range x.Args {
				its, ok := m.items(a)
				if !ok {
					return nil, false
				}
				for _, it := range its {
					out = slices.DeleteFunc(out, func(o item) bool { return o.key == it.key })
					out = append(out, it)
				}
			}
			return out, true
		case x.Name == "toset" && len(x.Args) == 1:
			t, ok := x.Args[0].(*hclsyntax.TupleConsExpr)
			if !ok {
				return nil, false
			}
			var out []item
			for _, el := range t.Exprs {
				s, ok := m.str(el)
				if !ok {
					return nil, false
				}
				out = append(out, item{s, el})
			}
			return out, true
		}
	case *hclsyntax.ForExpr:
		if x.KeyExpr == nil || x.Group {
			return nil, false
		}
		coll, ok := m.items(x.CollExpr)
		if !ok {
			return nil, false
		}
		var out []item
		for _, it := range coll {
			sc := &scope{mod: m, names: map[string]hclsyntax.Expression{x.ValVar: it.val}}
			if x.KeyVar != "" {
				sc.names[x.KeyVar] = &hclsyntax.LiteralValueExpr{Val: cty.StringVal(it.key), SrcRange: x.SrcRange}
			}
			if x.CondExpr != nil {
				c, err := m.subst(x.CondExpr, sc)
				if err != nil {
					return nil, false
				}
				keep, ok := m.boolean(c)
				if !ok {
					return nil, false
				}
				if !keep {
					continue
				}
			}
			ke, err1 := m.subst(x.KeyExpr, sc)
			ve, err2 := m.subst(x.ValExpr, sc)
			if err1 != nil || err2 != nil {
				return nil, false
			}
			k, ok := m.str(ke)
			if !ok {
				return nil, false
			}
			out = append(out, item{k, ve})
		}
		return out, true
	}
	return nil, false
}

// objectKey is the key of an object constructor item: a bare name or a
// string known offline.
func (m *tfModule) objectKey(k hclsyntax.Expression) (string, bool) {
	if kw := hcl.ExprAsKeyword(k); kw != "" {
		return kw, true
	}
	if ok, isKey := k.(*hclsyntax.ObjectConsKeyExpr); isKey {
		k = ok.Wrapped
	}
	return m.str(k)
}

func (m *tfModule) localExpr(name string) hclsyntax.Expression {
	for _, b := range m.top("locals") {
		if a, ok := b.Body.Attributes[name]; ok {
			return a.Expr
		}
	}
	return nil
}

// substBlock copies b with every expression substituted, named name.
func (m *tfModule) substBlock(b *hclsyntax.Block, sc *scope, name string) (*hclsyntax.Block, error) {
	body, err := m.substBody(b.Body, sc)
	if err != nil {
		return nil, err
	}
	delete(body.Attributes, "for_each")
	nb := *b
	nb.Labels = append(slices.Clone(b.Labels[:len(b.Labels)-1]), name)
	nb.Body = body
	return &nb, nil
}

func (m *tfModule) substBody(body *hclsyntax.Body, sc *scope) (*hclsyntax.Body, error) {
	nb := *body
	nb.Attributes = hclsyntax.Attributes{}
	for n, a := range body.Attributes {
		e, err := m.subst(a.Expr, sc)
		if err != nil {
			return nil, err
		}
		na := *a
		na.Expr = e
		nb.Attributes[n] = &na
	}
	nb.Blocks = nil
	for _, c := range body.Blocks {
		cb, err := m.substBody(c.Body, sc)
		if err != nil {
			return nil, err
		}
		nc := *c
		nc.Body = cb
		nb.Blocks = append(nb.Blocks, &nc)
	}
	return &nb, nil
}

// subst returns e (an expression of module m) with what sc binds replaced
// by its expression: each.key by the key, each.value.x by the value's x
// (the item of an object constructor, or a longer traversal), a for
// expression's symbols likewise, and under a module call var.x and local.x.
// The result shares unchanged nodes with e.
func (m *tfModule) subst(e hclsyntax.Expression, sc *scope) (hclsyntax.Expression, error) {
	if sc.depth > 16 {
		return nil, fmt.Errorf("substitution too deep")
	}
	switch x := e.(type) {
	case nil:
		return nil, nil
	case *hclsyntax.LiteralValueExpr, *hclsyntax.AnonSymbolExpr:
		return x, nil
	case *hclsyntax.ScopeTraversalExpr:
		base, rest, err := m.bound(x.Traversal, sc)
		if err != nil || base == nil {
			return x, err
		}
		return project(base, rest, x.SrcRange), nil
	case *hclsyntax.RelativeTraversalExpr:
		src, err := m.subst(x.Source, sc)
		if err != nil {
			return nil, err
		}
		return project(src, x.Traversal, x.SrcRange), nil
	case *hclsyntax.IndexExpr:
		y := *x
		if err := m.substInto(sc, &y.Collection, &y.Key); err != nil {
			return nil, err
		}
		if len(y.Key.Variables()) == 0 {
			if k, diags := y.Key.Value(nil); !diags.HasErrors() && k.IsKnown() && !k.IsNull() && (k.Type() == cty.String || k.Type() == cty.Number) {
				return project(y.Collection, hcl.Traversal{hcl.TraverseIndex{Key: k, SrcRange: x.Key.Range()}}, x.SrcRange), nil
			}
		}
		return &y, nil
	case *hclsyntax.TemplateExpr:
		y := *x
		return &y, m.substInto(sc, ptrs(&y.Parts)...)
	case *hclsyntax.FunctionCallExpr:
		y := *x
		return &y, m.substInto(sc, ptrs(&y.Args)...)
	case *hclsyntax.TupleConsExpr:
		y := *x
		return &y, m.substInto(sc, ptrs(&y.Exprs)...)
	case *hclsyntax.ObjectConsExpr:
		y := *x
		y.Items = slices.Clone(x.Items)
		var ps []*hclsyntax.Expression
		for i := range y.Items {
			if hcl.ExprAsKeyword(y.Items[i].KeyExpr) == "" { // a bare key is a name, not a reference
				ps = append(ps, &y.Items[i].KeyExpr)
			}
			ps = append(ps, &y.Items[i].ValueExpr)
		}
		return &y, m.substInto(sc, ps...)
	case *hclsyntax.TemplateWrapExpr:
		y := *x
		return &y, m.substInto(sc, &y.Wrapped)
	case *hclsyntax.ObjectConsKeyExpr:
		y := *x
		return &y, m.substInto(sc, &y.Wrapped)
	case *hclsyntax.ConditionalExpr:
		y := *x
		return &y, m.substInto(sc, &y.Condition, &y.TrueResult, &y.FalseResult)
	case *hclsyntax.BinaryOpExpr:
		y := *x
		return &y, m.substInto(sc, &y.LHS, &y.RHS)
	case *hclsyntax.UnaryOpExpr:
		y := *x
		return &y, m.substInto(sc, &y.Val)
	case *hclsyntax.ParenthesesExpr:
		y := *x
		return &y, m.substInto(sc, &y.Expression)
	case *hclsyntax.SplatExpr:
		y := *x
		return &y, m.substInto(sc, &y.Source, &y.Each)
	case *hclsyntax.ForExpr:
		y := *x
		if err := m.substInto(sc, &y.CollExpr); err != nil {
			return nil, err
		}
		inner := *sc
		inner.names = maps.Clone(sc.names)
		if inner.names == nil {
			inner.names = map[string]hclsyntax.Expression{}
		}
		for _, v := range []string{x.KeyVar, x.ValVar} {
			if v != "" {
				inner.names[v] = nil // the for's own symbol, not one of ours
			}
		}
		return &y, m.substInto(&inner, &y.KeyExpr, &y.ValExpr, &y.CondExpr)
	}
	for _, t := range e.Variables() {
		if b, _, _ := m.bound(t, sc); b != nil {
			return nil, fmt.Errorf("%s: cannot substitute into a %T", e.Range(), e)
		}
	}
	return e, nil
}

// substInto substitutes each non-nil *p in place (in a copy subst made).
func (m *tfModule) substInto(sc *scope, ps ...*hclsyntax.Expression) error {
	for _, p := range ps {
		if *p == nil {
			continue
		}
		e, err := m.subst(*p, sc)
		if err != nil {
			return err
		}
		*p = e
	}
	return nil
}

// ptrs clones the slice *xs and points at its elements, for substInto.
func ptrs(xs *[]hclsyntax.Expression) []*hclsyntax.Expression {
	*xs = slices.Clone(*xs)
	out := make([]*hclsyntax.Expression, len(*xs))
	for i := range *xs {
		out[i] = &(*xs)[i]
	}
	return out
}

// bound returns what sc binds the start of t to and the rest of t, or a
// nil expression when sc binds none of it.
func (m *tfModule) bound(t hcl.Traversal, sc *scope) (hclsyntax.Expression, hcl.Traversal, error) {
	root := t.RootName()
	attrAt := func(i int) string {
		if i < len(t) {
			if a, ok := t[i].(hcl.TraverseAttr); ok {
				return a.Name
			}
		}
		return ""
	}
	rng := t.SourceRange()
	if v, ok := sc.names[root]; ok {
		if v == nil {
			return nil, nil, nil
		}
		return v, t[1:], nil
	}
	switch {
	case sc.each != nil && (root == sc.iter || sc.iter == "" && root == "each"):
		switch attrAt(1) {
		case "key":
			return &hclsyntax.LiteralValueExpr{Val: cty.StringVal(sc.each.key), SrcRange: rng}, t[2:], nil
		case "value":
			return sc.each.val, t[2:], nil
		}
		return nil, nil, fmt.Errorf("%s: %s.%s", rng, root, attrAt(1))
	case root == "var" && sc.bind:
		if v, ok := sc.vars[attrAt(1)]; ok {
			return v, t[2:], nil
		}
		return &hclsyntax.LiteralValueExpr{Val: cty.DynamicVal, SrcRange: rng}, nil, nil
	case root == "local" && sc.bind:
		le := m.localExpr(attrAt(1))
		if le == nil {
			return &hclsyntax.LiteralValueExpr{Val: cty.DynamicVal, SrcRange: rng}, nil, nil
		}
		v, err := m.subst(le, &scope{mod: m, bind: true, vars: sc.vars, module: sc.module, depth: sc.depth + 1})
		return v, t[2:], err
	}
	return nil, nil, nil
}

// project applies traversal steps to base: an object constructor's item
// where base is one, else a longer traversal.
func project(base hclsyntax.Expression, steps hcl.Traversal, rng hcl.Range) hclsyntax.Expression {
	for len(steps) > 0 {
		obj, ok := base.(*hclsyntax.ObjectConsExpr)
		if !ok {
			break
		}
		var name string
		switch s := steps[0].(type) {
		case hcl.TraverseAttr:
			name = s.Name
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String && s.Key.IsKnown() {
				name = s.Key.AsString()
			}
		}
		var next hclsyntax.Expression
		for _, it := range obj.Items {
			if k := hcl.ExprAsKeyword(it.KeyExpr); k != "" && k == name {
				next = it.ValueExpr
			} else if ko, isKey := it.KeyExpr.(*hclsyntax.ObjectConsKeyExpr); isKey && k == "" {
				if v, diags := ko.Wrapped.Value(nil); !diags.HasErrors() && v.Type() == cty.String && v.IsKnown() && v.AsString() == name {
					next = it.ValueExpr
				}
			}
		}
		if next == nil {
			break
		}
		base, steps = next, steps[1:]
	}
	if len(steps) == 0 {
		return base
	}
	if t, ok := base.(*hclsyntax.ScopeTraversalExpr); ok {
		return &hclsyntax.ScopeTraversalExpr{Traversal: append(slices.Clone(t.Traversal), steps...), SrcRange: t.SrcRange}
	}
	return &hclsyntax.RelativeTraversalExpr{Source: base, Traversal: steps, SrcRange: rng}
}

// instance is a resource instance of a module or of a module it calls.
type instance struct {
	module string // "" or the calls it is under: "module.alarms."
	*hclsyntax.Block
}

func (i instance) addr() string { return i.module + i.Labels[0] + "." + i.Labels[1] }

// deepResources returns the resource instances of type typ ("" for every
// type) of m and of the local modules m calls, these with var.x bound to
// the call's argument (or the variable's default) and local.x to the
// called module's local, in m's terms: what a call creates, as a check of m
// sees it. The called modules' files join m.src.
func (m *tfModule) deepResources(typ string) ([]instance, error) {
	return m.deep("resource", typ)
}

// deep is deepResources for blocks of kind "resource" or "data".
func (m *tfModule) deep(kind, typ string) ([]instance, error) {
	var out []instance
	for _, b := range m.top(kind) {
		if typ == "" || b.Labels[0] == typ {
			out = append(out, instance{"", b})
		}
	}
	err := m.callees(m.blocks, &scope{mod: m}, func(child *tfModule, sc *scope) {
		for _, b := range child.blocks {
			if b.Type == kind && (typ == "" || b.Labels[0] == typ) {
				for _, ib := range m.expand(b, sc) {
					out = append(out, instance{sc.module, ib})
				}
			}
		}
	})
	return out, err
}

// callees calls visit for each local module called in blocks (of module
// sc.mod, under sc), and for the modules those call.
func (m *tfModule) callees(blocks []*hclsyntax.Block, sc *scope, visit func(*tfModule, *scope)) error {
	for _, b := range blocks {
		if b.Type != "module" || attr(b, "count") != nil || attr(b, "for_each") != nil {
			continue
		}
		src, _ := sc.mod.str(attr(b, "source"))
		if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "../") {
			continue
		}
		child, err := m.child(filepath.Join(sc.mod.dir, src))
		if err != nil {
			return fmt.Errorf("module.%s: %v", b.Labels[0], err)
		}
		for k, v := range child.src {
			m.src[k] = v
		}
		vars := map[string]hclsyntax.Expression{}
		for _, v := range child.top("variable") {
			name := v.Labels[0]
			if a, ok := b.Body.Attributes[name]; ok {
				e, err := sc.mod.subst(a.Expr, sc)
				if err != nil {
					return err
				}
				vars[name] = e
			} else if d := attr(v, "default"); d != nil {
				vars[name] = d
			}
		}
		csc := &scope{mod: child, bind: true, vars: vars, module: sc.module + "module." + b.Labels[0] + ".", depth: sc.depth + 1}
		visit(child, csc)
		if err := m.callees(child.blocks, csc, visit); err != nil {
			return err
		}
	}
	return nil
}
