// Package docs holds the tests that keep the documentation honest: every
// IAMJIT_* variable the code reads is in the contract (docs/design.md) and
// every one it lists is read; every code the code can produce is listed
// there, and every listed one exists; every relative link and repository
// path named in a markdown file resolves in a fresh clone.
//
// They live beside the documents they guard and run in `go test ./...`
// (so in `make test`); they read files only, build nothing and need no
// emulator.
package docs

import (
	"bytes"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository: go test runs in the package's directory.
const root = ".."

// contract is the document that lists every variable and every code,
// relative to root.
const contract = "docs/design.md"

// skipDir reports directories that are not the project's own files.
func skipDir(name string) bool {
	return name == ".git" || name == "node_modules" || name == "bin"
}

// files returns every file under the repository whose name ends with ext,
// relative to root, skipping what skipDir names.
func files(t *testing.T, ext string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(p, ext) {
			rel, _ := filepath.Rel(root, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("no %s file under %s", ext, root)
	}
	return out
}

func read(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func parse(t *testing.T, rel string) *ast.File {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, rel), nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// stringLit returns the value of a string literal, or false.
func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// section returns the text of the level-2 heading title in doc, up to the
// next level-2 heading.
func section(t *testing.T, doc, title string) string {
	t.Helper()
	start := strings.Index(doc, "\n## "+title+"\n")
	if start < 0 {
		t.Fatalf("docs/design.md has no section %q", "## "+title)
	}
	rest := doc[start+len(title)+5:]
	if end := strings.Index(rest, "\n## "); end >= 0 {
		rest = rest[:end]
	}
	return rest
}

var varName = regexp.MustCompile(`IAMJIT_[A-Z0-9_]+`)

// TestEveryVariableIsDocumented: every IAMJIT_* name in a string literal of
// the non-test Go source is listed in the Configuration section of
// docs/design.md; every IAMJIT_* name in any markdown file is one the Go
// source (tests included: some are read by tests only) names. A name
// ending in "_" is a prefix (IAMJIT_DEV_MEMBER_GROUP_ARN_<ID>).
func TestEveryVariableIsDocumented(t *testing.T) {
	readBy := map[string]string{} // name -> a non-test file naming it
	known := map[string]string{}  // also test files
	for _, rel := range files(t, ".go") {
		ast.Inspect(parse(t, rel), func(n ast.Node) bool {
			if s, ok := stringLit(asExpr(n)); ok {
				for _, name := range varName.FindAllString(s, -1) {
					if _, ok := known[name]; !ok {
						known[name] = rel
					}
					if _, ok := readBy[name]; !ok && !strings.HasSuffix(rel, "_test.go") {
						readBy[name] = rel
					}
				}
			}
			return true
		})
	}
	if len(readBy) < 20 {
		t.Fatalf("found only %d IAMJIT_* names in the Go source: is the scan broken?", len(readBy))
	}
	listed := map[string]bool{}
	for _, name := range varName.FindAllString(section(t, read(t, contract), "Configuration"), -1) {
		listed[name] = true
	}
	for _, name := range sortedKeys(readBy) {
		if !listed[name] {
			t.Errorf("%s is read by %s but not listed in docs/design.md, Configuration", name, readBy[name])
		}
	}
	for _, rel := range files(t, ".md") {
		for _, name := range varName.FindAllString(read(t, rel), -1) {
			if _, ok := known[name]; ok {
				continue
			}
			if strings.HasSuffix(name, "_") && slices.ContainsFunc(sortedKeys(known), func(k string) bool { return strings.HasPrefix(k, name) }) {
				continue // a family, like IAMJIT_DEV_*
			}
			t.Errorf("%s names %s, which no Go source reads", rel, name)
		}
	}
}

// asExpr is n as an expression, or nil.
func asExpr(n ast.Node) ast.Expr {
	e, _ := n.(ast.Expr)
	return e
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// codeDirs hold the code that produces rejection, decode, dead-letter and
// replay codes.
var codeDirs = []string{"grants", "consumer", "events", "internal", "replay"}

// codeMakers are the functions whose first argument is a code.
var codeMakers = map[string]bool{"reject": true, "decodeErr": true}

// producedCodes collects, from the non-test Go files under codeDirs: the
// first argument of reject(…)/decodeErr(…) and the value of a Code: field
// when they are string literals; every constant whose type is named Code
// or whose name is Code<Something>; and the string literals a function
// named Code returns (awsx.Code's fallbacks). It maps each code to a file
// producing it.
func producedCodes(t *testing.T) map[string]string {
	t.Helper()
	codes := map[string]string{}
	add := func(e ast.Expr, rel string) {
		if s, ok := stringLit(e); ok && s != "" {
			codes[s] = rel
		}
	}
	for _, rel := range files(t, ".go") {
		if strings.HasSuffix(rel, "_test.go") || !slices.Contains(codeDirs, strings.Split(filepath.ToSlash(rel), "/")[0]) {
			continue
		}
		ast.Inspect(parse(t, rel), func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				if codeMakers[funcName(n.Fun)] && len(n.Args) > 0 {
					add(n.Args[0], rel)
				}
			case *ast.KeyValueExpr:
				if k, ok := n.Key.(*ast.Ident); ok && k.Name == "Code" {
					add(n.Value, rel)
				}
			case *ast.GenDecl:
				if n.Tok != token.CONST {
					return true
				}
				for _, spec := range n.Specs {
					vs := spec.(*ast.ValueSpec)
					typed := vs.Type != nil && funcName(vs.Type) == "Code"
					for i, name := range vs.Names {
						named := strings.HasPrefix(name.Name, "Code") && len(name.Name) > 4 && unicode.IsUpper(rune(name.Name[4]))
						if (typed || named) && i < len(vs.Values) {
							add(vs.Values[i], rel)
						}
					}
				}
			case *ast.FuncDecl:
				if n.Name.Name != "Code" || n.Body == nil {
					return true
				}
				ast.Inspect(n.Body, func(m ast.Node) bool {
					if r, ok := m.(*ast.ReturnStmt); ok && len(r.Results) == 1 {
						add(r.Results[0], rel)
					}
					return true
				})
			}
			return true
		})
	}
	return codes
}

// funcName is the name of an identifier or the selected name of x.Name.
func funcName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

var (
	tableRow = regexp.MustCompile("(?m)^\\| *(`[^|]*)\\|")
	backtick = regexp.MustCompile("`([^`]+)`")
)

// TestEveryCodeIsListed: the codes the code produces and the codes listed
// in the tables of docs/design.md's Codes section (the backticked names in
// each row's first cell) are the same set.
func TestEveryCodeIsListed(t *testing.T) {
	produced := producedCodes(t)
	if len(produced) < 20 {
		t.Fatalf("found only %d codes in the Go source: is the scan broken?", len(produced))
	}
	listed := map[string]bool{}
	for _, row := range tableRow.FindAllStringSubmatch(section(t, read(t, contract), "Codes"), -1) {
		for _, m := range backtick.FindAllStringSubmatch(row[1], -1) {
			listed[m[1]] = true
		}
	}
	for _, code := range sortedKeys(produced) {
		if !listed[code] {
			t.Errorf("code %q (produced in %s) is not listed in docs/design.md, Codes", code, produced[code])
		}
	}
	for _, code := range sortedKeys(listed) {
		if _, ok := produced[code]; !ok {
			t.Errorf("docs/design.md, Codes, lists %q, which no Go source under %v produces", code, codeDirs)
		}
	}
}

var (
	fence      = regexp.MustCompile("(?ms)^ *(```|~~~).*?^ *(```|~~~) *$")
	inlineCode = regexp.MustCompile("`[^`\n]*`")
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`(?m)^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)`)
	scheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	heading    = regexp.MustCompile(`(?m)^ {0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$`)
	linkText   = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
)

// withoutCode blanks fenced blocks and inline code spans: a link there is
// an example, not a link.
func withoutCode(s string) string {
	s = fence.ReplaceAllStringFunc(s, func(m string) string { return strings.Repeat("\n", strings.Count(m, "\n")) })
	return inlineCode.ReplaceAllString(s, "``")
}

// anchors returns the ids GitHub gives the headings of a markdown text:
// lower case, every character but letters, digits, spaces, '-' and '_'
// dropped, spaces turned into '-', a repeated id suffixed -1, -2, ….
func anchors(md string) map[string]bool {
	md = fence.ReplaceAllString(md, "")
	ids := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(md, -1) {
		text := linkText.ReplaceAllString(m[1], "$1")
		var b strings.Builder
		for _, r := range strings.ToLower(text) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteRune('-')
			}
		}
		id := b.String()
		if n := seen[id]; n > 0 {
			ids[id+"-"+strconv.Itoa(n)] = true
		} else {
			ids[id] = true
		}
		seen[id]++
	}
	return ids
}

// TestLinksResolve: every relative link of every markdown file names a
// file or directory of the repository, and a #fragment into a markdown
// file names one of its headings.
func TestLinksResolve(t *testing.T) {
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, rel := range files(t, ".md") {
		text := withoutCode(read(t, rel))
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, m := range refLink.FindAllStringSubmatch(text, -1) {
			targets = append(targets, m[1])
		}
		for _, target := range targets {
			if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
				continue // a URL
			}
			checked++
			path, frag, _ := strings.Cut(target, "#")
			dest := filepath.Join(root, rel) // the file itself for "#frag"
			if path != "" {
				if strings.HasPrefix(path, "/") {
					dest = filepath.Join(root, path) // GitHub: from the repository's root
				} else {
					dest = filepath.Join(filepath.Dir(filepath.Join(root, rel)), path)
				}
			}
			destAbs, _ := filepath.Abs(dest)
			if destAbs != abs && !strings.HasPrefix(destAbs, abs+string(filepath.Separator)) {
				t.Errorf("%s: link %q leaves the repository", rel, target)
				continue
			}
			if _, err := os.Stat(dest); err != nil {
				t.Errorf("%s: link %q: no such file in the repository", rel, target)
				continue
			}
			if frag != "" && strings.HasSuffix(dest, ".md") {
				md, err := os.ReadFile(dest)
				if err != nil {
					t.Fatal(err)
				}
				if !anchors(string(md))[frag] {
					t.Errorf("%s: link %q: no heading there has the id %q", rel, target, frag)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no relative link found in any markdown file: is the scan broken?")
	}
}

var repoPath = regexp.MustCompile(`^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)+/?$`)

// TestNamedPathsExist: a path in backticks in a markdown file whose first
// element is a top-level directory of the repository names a file or
// directory that exists (a Go symbol after it, as in grants/dynamo.New, is
// allowed), so a fresh clone has every file the documents name.
func TestNamedPathsExist(t *testing.T) {
	top := map[string]bool{}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() && !skipDir(e.Name()) && !strings.HasPrefix(e.Name(), ".") {
			top[e.Name()] = true
		}
	}
	checked := 0
	for _, rel := range files(t, ".md") {
		text := fence.ReplaceAllString(read(t, rel), "")
		for _, m := range backtick.FindAllStringSubmatch(text, -1) {
			p := m[1]
			if !repoPath.MatchString(p) || !top[strings.Split(p, "/")[0]] {
				continue
			}
			checked++
			if exists(p) {
				continue
			}
			// pkg/path.Symbol: the package directory must exist.
			dir, file := p[:strings.LastIndex(p, "/")], p[strings.LastIndex(p, "/")+1:]
			if pkg, sym, ok := strings.Cut(file, "."); ok && sym != "" && unicode.IsUpper(rune(sym[0])) && exists(dir+"/"+pkg) {
				continue
			}
			t.Errorf("%s names %s, which is not in the repository", rel, p)
		}
	}
	if checked == 0 {
		t.Fatal("no repository path found in any markdown file: is the scan broken?")
	}
}

func exists(rel string) bool {
	_, err := os.Stat(filepath.Join(root, filepath.FromSlash(rel)))
	return err == nil
}

// TestNoFileNamesTheOldContract: the contract is docs/design.md; no file
// of the repository names the old one, which a clone does not have.
func TestNoFileNamesTheOldContract(t *testing.T) {
	old := []byte("DESIGN" + ".md")
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != root && skipDir(d.Name()) {
				return filepath.SkipDir
			}
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b, 0) < 0 && bytes.Contains(b, old) {
			rel, _ := filepath.Rel(root, p)
			t.Errorf("%s names %s: point it at docs/design.md", rel, old)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
