/**
 * The helm stand-in (test/helpers/helm-template.ts) behaves like helm where a chart can go wrong: Go's
 * truth and comparison rules, nil handling, number printing, whitespace trimming, scoping, and helm's
 * values reading. A stand-in more lenient than helm would let the chart tests pass on templates that
 * helm refuses, so each rule here is one helm (Go text/template + Sprig) really has.
 */
import t, { type Test } from 'tap'
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { goFloat, HelmError, loadChart, readHelmYaml, renderChart, toYaml } from '../helpers/helm-template.js'

/** Renders one template `tpl` of a throwaway chart with these values.yaml contents. */
function run (tpl: string, values = '', helpers = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'sg-helm-'))
  try {
    mkdirSync(join(dir, 'templates'))
    writeFileSync(join(dir, 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 1.2.3\nappVersion: "4.5"\n')
    writeFileSync(join(dir, 'values.yaml'), values)
    writeFileSync(join(dir, 'templates', 'x.yaml'), tpl)
    if (helpers !== '') writeFileSync(join(dir, 'templates', '_h.tpl'), helpers)
    const r = renderChart(loadChart(dir), { releaseName: 'rel', namespace: 'ns', raw: !tpl.startsWith('kind:') })
    return r.files.get('demo/templates/x.yaml') ?? ''
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

function fails (t: Test, label: string, tpl: string, values: string, expect: RegExp): void {
  try {
    const out = run(tpl, values)
    t.fail(`${label}: rendered ${JSON.stringify(out)}`)
  } catch (err) {
    t.ok(err instanceof HelmError, `${label}: a helm error`)
    t.match((err as Error).message, expect, label)
  }
}

t.test('values are read like helm reads them (YAML 1.1 into JSON numbers)', async t => {
  t.same(readHelmYaml('a: 1.10\nb: yes\nc: "1.10"\nd: 010\ne: 1e3'), { a: 1.1, b: true, c: '1.10', d: 8, e: 1000 })
  t.equal(run('tag: {{ .Values.a }}', 'a: 1.10'), 'tag: 1.1', 'an unquoted 1.10 prints as 1.1')
  t.equal(run('n: {{ .Values.big }}', 'big: 1000000'), 'n: 1e+06', 'a float64 million prints as 1e+06, as in helm')
  t.same(readHelmYaml('n: 1\ny: 2'), { false: 1, true: 2 }, 'YAML 1.1: the keys n and y are booleans, as in helm')
  t.same([goFloat(70), goFloat(123456), goFloat(1234567), goFloat(0.0001), goFloat(0.00001), goFloat(2.5)], ['70', '123456', '1.234567e+06', '0.0001', '1e-05', '2.5'])
})

t.test('Go truth: 0, "", empty lists and maps, nil are false', async t => {
  const tpl = '{{ range $k, $v := .Values }}{{ $k }}={{ if $v }}T{{ else }}F{{ end }} {{ end }}'
  t.equal(run(tpl, 'a: 0\nb: ""\nc: []\nd: {}\ne: null\nf: false\ng: 1\nh: x\ni: [0]\nj: {k: 0}'), 'a=F b=F c=F d=F e=F f=F g=T h=T i=T j=T ')
})

t.test('comparisons follow Go: int vs float64 is an error, nil equals only nil', async t => {
  fails(t, 'eq float64 value and int literal', '{{ eq .Values.num 0 }}', 'num: 0', /incompatible types for comparison/)
  fails(t, 'gt float64 value and int literal', '{{ gt .Values.num 1 }}', 'num: 2', /incompatible types for comparison/)
  t.equal(run('{{ gt (int .Values.num) 1 }}', 'num: 2'), 'true', 'int converts')
  t.equal(run('{{ eq .Values.missing "x" }}', ''), 'false', 'nil vs string: false, no error')
  t.equal(run('{{ eq .Values.s "a" "b" }}', 's: b'), 'true', 'eq with several: any')
  fails(t, 'lt on nil', '{{ lt .Values.missing 1 }}', '', /invalid type for comparison/)
})

t.test('nil handling: a missing key prints nothing, a field of nil is an error', async t => {
  t.equal(run('v: {{ .Values.nope }}', 'a: 1'), 'v: ', 'helm replaces <no value> with nothing')
  fails(t, 'field of a missing map', '{{ .Values.nope.deeper }}', 'a: 1', /nil pointer evaluating interface \{\}\.deeper/)
  fails(t, 'unknown field of a built-in object', '{{ .Release.Nmae }}', '', /can't evaluate field Nmae/)
  t.equal(run('{{ dig "a" "b" "def" .Values }}', 'a: {}'), 'def', 'dig for optional paths')
})

t.test('whitespace trimming, comments, scoping, and/or, default, required', async t => {
  t.equal(run('a:\n  {{- if true }}\n  b: 1\n  {{- end }}\nc: 2'), 'a:\n  b: 1\nc: 2')
  t.equal(run('x{{/* comment */}}y {{- /* trimmed */ -}} z'), 'xyz')
  t.equal(run('{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ $y := 3 }}{{ end }}{{ $x }}'), '2', '= assigns the outer variable')
  fails(t, 'a variable declared in a block is gone after it', '{{ if true }}{{ $y := 3 }}{{ end }}{{ $y }}', '', /undefined variable "\$y"/)
  t.equal(run('{{ or .Values.a .Values.b "c" }}|{{ and 1 0 2 }}|{{ and 1 2 }}', 'a: ""\nb: B'), 'B|0|2', 'and/or return an operand')
  t.equal(run('{{ .Values.a | default "d" }}|{{ .Values.z | default "d" }}|{{ 0.0 | default 5 }}', 'a: x'), 'x|d|5')
  t.equal(run('{{ required "need a" .Values.a }}', 'a: 0'), '0', 'required lets 0 through (only nil and "" fail)')
  fails(t, 'required on ""', '{{ required "need a" .Values.a }}', 'a: ""', /execution error at \(demo\/templates\/x\.yaml:1\): need a/)
  fails(t, 'fail', '{{ fail "no" }}', '', /^execution error at \(demo\/templates\/x\.yaml:1\): no$/)
})

t.test('range, include, tpl, toYaml, the built-in objects', async t => {
  t.equal(run('{{ range $k, $v := .Values.m }}{{ $k }}{{ $v }},{{ end }}{{ range $i, $e := .Values.l }}{{ $i }}{{ $e }};{{ else }}none{{ end }}', 'm: {b: 2, a: 1}\nl: []'), 'a1,b2,none', 'maps in key order, else for empty')
  t.equal(run('x:{{ include "h" . | nindent 2 }}', 'a: 1', '{{- define "h" -}}\na: {{ .Values.a }}\nb: {{ $.Release.Name }}\n{{- end }}'), 'x:\n  a: 1\n  b: rel')
  t.equal(run('{{ tpl .Values.t . }}', 't: "{{ .Release.Namespace }}-{{ .Chart.Name }}"'), 'ns-demo')
  t.equal(toYaml({ b: ['1.10', 'yes', ''], a: { z: 1n, x: null } }), 'a:\n  x: null\n  z: 1\nb:\n- "1.10"\n- "yes"\n- ""', 'sorted keys, YAML 1.1 quoting, lists not indented')
  t.equal(run('{{ .Chart.Version }} {{ .Chart.AppVersion }} {{ .Release.Service }} {{ .Capabilities.APIVersions.Has "apps/v1" }} {{ .Capabilities.APIVersions.Has "x/v9" }}'), '1.2.3 4.5 Helm true false')
  t.equal(run('{{ printf "%s:%d:%v:%q" "a" (int 3) 1.5 "q" }}'), 'a:3:1.5:"q"')
})

t.test('a manifest with a duplicate key is refused, as the API server refuses it', async t => {
  fails(t, 'duplicate key', 'kind: ConfigMap\nmetadata:\n  name: a\n  name: b', '', /Map keys must be unique/)
})
