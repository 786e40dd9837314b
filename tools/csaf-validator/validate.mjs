#!/usr/bin/env node
// Checks repotool's CSAF 2.0 output with the BSI's validator library
// (@secvisogram/csaf-validator-lib) and prints the results as JSON on stdout.
//
//   node validate.mjs document FILE.json [FILE.json ...]
//       the library's schema (strict), mandatory (6.1), recommended (6.2,
//       "optional" in the library) and informative (6.3) tests on each document;
//       one file: its result; several: {"FILE": result, ...} (loading the
//       library takes seconds, so check many documents in one run)
//   node validate.mjs provider PUBLIC_DIR BASE_URL
//       the trusted-provider requirements of CSAF 2.0 section 7 on the tree
//       PUBLIC_DIR/.well-known/csaf/ as it is served at BASE_URL; every listed
//       document also gets the library's document tests (requirement 1)
//
// Exit status: 0 when the run finished (read "ok" in the output), 2 on bad usage.
// The library has no provider-metadata tests of its own (2.0.10), so the provider
// checks below follow the requirements' text; signatures are verified by the
// Python tests with gpgv (this script only checks that they are armored).

import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'

import validateStrict from '@secvisogram/csaf-validator-lib/validateStrict.js'
import * as schemaTests from '@secvisogram/csaf-validator-lib/schemaTests.js'
import * as mandatoryTests from '@secvisogram/csaf-validator-lib/mandatoryTests.js'
import * as optionalTests from '@secvisogram/csaf-validator-lib/optionalTests.js'
import * as informativeTests from '@secvisogram/csaf-validator-lib/informativeTests.js'

// informative tests that cannot run here: they reach out to every URL in the
// document (this machine has no network), or need hunspell dictionaries
const SKIPPED = {
  informativeTest_6_3_6: 'resolves every non-self URL over the network',
  informativeTest_6_3_7: 'resolves the self URLs over the network',
  informativeTest_6_3_8: 'spell check: needs hunspell and its dictionaries',
}

function findings(result) {
  return result.tests
    .filter((t) => t.errors.length || t.warnings.length || t.infos.length)
    .map((t) => ({
      test: t.name,
      errors: t.errors,
      warnings: t.warnings,
      infos: t.infos,
    }))
}

async function run(tests, doc) {
  return findings(await validateStrict(tests, doc))
}

export async function checkDocument(doc) {
  const informative = Object.values(informativeTests).filter(
    (t) => !(t.name in SKIPPED)
  )
  const out = {
    schema: await run([schemaTests.csaf_2_0_strict], doc),
    mandatory: await run(Object.values(mandatoryTests), doc),
    recommended: await run(Object.values(optionalTests), doc),
    informative: await run(informative, doc),
    skipped: SKIPPED,
  }
  const count = (group) =>
    out[group].reduce((n, f) => n + f.errors.length + f.warnings.length, 0)
  // a valid CSAF document (conformance clause 1): schema and mandatory tests
  out.valid = count('schema') + count('mandatory') === 0
  // recommended tests report their findings as warnings: for "ok" they count too
  out.ok = out.valid && count('recommended') === 0
  return out
}

// --- provider tree (CSAF 2.0 section 7) ---------------------------------------

const FILENAME_RE = /[^+\-a-z0-9]+/g
const DATE_TIME_RE =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/

function expectedFilename(trackingId) {
  return trackingId.toLowerCase().replace(FILENAME_RE, '_') + '.json'
}

class Report {
  constructor() {
    this.requirements = {}
  }
  check(requirement, ok, message) {
    const r = (this.requirements[requirement] ??= { ok: true, problems: [] })
    if (!ok) {
      r.ok = false
      r.problems.push(message)
    }
    return ok
  }
  na(requirement, why) {
    this.requirements[requirement] = { ok: true, not_applicable: why, problems: [] }
  }
}

function isUri(value) {
  try {
    return typeof value === 'string' && Boolean(new URL(value).protocol)
  } catch {
    return false
  }
}

function readJson(report, requirement, path) {
  try {
    return JSON.parse(readFileSync(path, 'utf8'))
  } catch (e) {
    report.check(requirement, false, `${path}: ${e.message}`)
    return null
  }
}

function checkMetadataShape(report, pm) {
  const req = '7.1.7 provider-metadata.json'
  const required = [
    'canonical_url',
    'last_updated',
    'list_on_CSAF_aggregators',
    'mirror_on_CSAF_aggregators',
    'metadata_version',
    'publisher',
    'role',
  ]
  for (const key of required) {
    report.check(req, key in pm, `missing required property ${key}`)
  }
  const known = new Set([...required, 'distributions', 'public_openpgp_keys'])
  for (const key of Object.keys(pm)) {
    report.check(req, known.has(key), `unknown property ${key}`)
  }
  report.check(
    req,
    isUri(pm.canonical_url) && /\/provider-metadata\.json$/.test(pm.canonical_url),
    'canonical_url must be a URL ending in /provider-metadata.json'
  )
  report.check(req, DATE_TIME_RE.test(pm.last_updated ?? ''), 'last_updated is not a date-time')
  for (const key of ['list_on_CSAF_aggregators', 'mirror_on_CSAF_aggregators']) {
    report.check(req, typeof pm[key] === 'boolean', `${key} must be a boolean`)
  }
  report.check(req, pm.metadata_version === '2.0', 'metadata_version must be "2.0"')
  const categories = ['coordinator', 'discoverer', 'other', 'translator', 'user', 'vendor']
  const p = pm.publisher ?? {}
  report.check(req, categories.includes(p.category), 'publisher.category is not a CSAF category')
  report.check(req, typeof p.name === 'string' && p.name.length > 0, 'publisher.name is empty')
  report.check(req, isUri(p.namespace), 'publisher.namespace is not a URL')
  const roles = ['csaf_publisher', 'csaf_provider', 'csaf_trusted_provider']
  report.check(req, roles.includes(pm.role), `role ${pm.role} is not a CSAF role`)
  report.check(
    req,
    Array.isArray(pm.distributions) && pm.distributions.length > 0,
    'distributions must list at least one distribution'
  )
  for (const d of pm.distributions ?? []) {
    const feeds = d.rolie?.feeds
    if (d.rolie !== undefined) {
      report.check(req, Array.isArray(feeds) && feeds.length > 0, 'rolie.feeds is empty')
    }
    for (const f of feeds ?? []) {
      report.check(
        req,
        ['UNLABELED', 'WHITE', 'GREEN', 'AMBER', 'RED'].includes(f.tlp_label),
        `feed ${f.url}: tlp_label ${f.tlp_label} is not a TLP label`
      )
      report.check(req, isUri(f.url) && /\.json$/.test(f.url), `feed url ${f.url} is not a .json URL`)
    }
    if (d.directory_url !== undefined) {
      report.check(req, isUri(d.directory_url), `directory_url ${d.directory_url} is not a URL`)
    }
  }
  for (const k of pm.public_openpgp_keys ?? []) {
    report.check(
      req,
      /^[0-9a-fA-F]{40,}$/.test(k.fingerprint ?? ''),
      `key fingerprint ${k.fingerprint} is not 40+ hex digits`
    )
    report.check(req, isUri(k.url), `key url ${k.url} is not a URL`)
  }
}

export async function checkProvider(publicDir, baseUrl) {
  const report = new Report()
  const base = baseUrl.replace(/\/+$/, '')
  const local = (url) =>
    typeof url === 'string' && url.startsWith(base + '/')
      ? join(publicDir, decodeURI(url.slice(base.length + 1)))
      : null
  const csafDir = join(publicDir, '.well-known', 'csaf')
  const pmPath = join(csafDir, 'provider-metadata.json')
  const documents = {}

  report.check('7.1.9 well-known URL', existsSync(pmPath), `${pmPath} does not exist`)
  const pm = existsSync(pmPath) ? readJson(report, '7.1.7 provider-metadata.json', pmPath) : null
  if (pm === null) return { ok: false, requirements: report.requirements, documents }

  checkMetadataShape(report, pm)
  report.check(
    '7.1.9 well-known URL',
    pm.canonical_url === `${base}/.well-known/csaf/provider-metadata.json`,
    `canonical_url ${pm.canonical_url} is not ${base}/.well-known/csaf/provider-metadata.json`
  )
  report.check(
    '7.2.3 role',
    pm.role === 'csaf_trusted_provider',
    `role is ${pm.role}, not csaf_trusted_provider`
  )
  report.check(
    '7.1.3 TLS',
    base.startsWith('https://'),
    `${base} is not an https:// address: CSAF documents must be served over TLS`
  )

  // 20: the public key
  const keys = pm.public_openpgp_keys ?? []
  report.check('7.1.20 public OpenPGP key', keys.length > 0, 'public_openpgp_keys is empty')
  for (const k of keys) {
    const path = local(k.url)
    const text = path && existsSync(path) ? readFileSync(path, 'utf8') : ''
    report.check(
      '7.1.20 public OpenPGP key',
      text.includes('-----BEGIN PGP PUBLIC KEY BLOCK-----'),
      `${k.url} is not an armored public key served from this tree`
    )
  }

  // 15: a ROLIE feed per TLP label, listing every document with hash and signature
  const feeds = (pm.distributions ?? []).flatMap((d) => d.rolie?.feeds ?? [])
  report.check(
    '7.1.15 ROLIE feed',
    feeds.some((f) => ['WHITE', 'GREEN', 'UNLABELED'].includes(f.tlp_label)),
    'no TLP:WHITE, TLP:GREEN or unlabeled feed'
  )
  for (const f of feeds) {
    const feedPath = local(f.url)
    if (!report.check('7.1.15 ROLIE feed', feedPath && existsSync(feedPath), `${f.url} is not in the tree`))
      continue
    const feed = readJson(report, '7.1.15 ROLIE feed', feedPath)?.feed
    if (!report.check('7.1.15 ROLIE feed', feed && typeof feed === 'object', `${f.url} has no "feed" object`))
      continue
    for (const key of ['id', 'title', 'link', 'category', 'updated', 'entry']) {
      report.check('7.1.15 ROLIE feed', key in feed, `${f.url}: feed.${key} is missing`)
    }
    report.check(
      '7.1.15 ROLIE feed',
      (feed.link ?? []).some((l) => l.rel === 'self' && l.href === f.url),
      `${f.url}: no self link to the feed itself`
    )
    report.check(
      '7.1.15 ROLIE feed',
      (feed.category ?? []).some(
        (c) => c.scheme === 'urn:ietf:params:rolie:category:information-type' && c.term === 'csaf'
      ),
      `${f.url}: no csaf information-type category`
    )
    report.check('7.1.15 ROLIE feed', DATE_TIME_RE.test(feed.updated ?? ''), `${f.url}: updated is not a date-time`)
    const folder = feedPath.slice(0, feedPath.lastIndexOf('/'))
    const listed = []
    for (const entry of feed.entry ?? []) {
      const links = Object.fromEntries((entry.link ?? []).map((l) => [l.rel, l.href]))
      const self = links.self
      const docPath = local(self)
      const where = `${f.url}: entry ${entry.id}`
      if (!report.check('7.1.15 ROLIE feed', docPath && existsSync(docPath), `${where}: ${self} is not in the tree`))
        continue
      for (const key of ['id', 'title', 'published', 'updated', 'content', 'format']) {
        report.check('7.1.15 ROLIE feed', key in entry, `${where}: ${key} is missing`)
      }
      report.check('7.1.15 ROLIE feed', entry.content?.src === self, `${where}: content.src is not the document`)
      report.check('7.1.15 ROLIE feed', entry.format?.version === '2.0', `${where}: format.version is not 2.0`)
      const bytes = readFileSync(docPath)
      const doc = JSON.parse(bytes.toString('utf8'))
      const rel = relative(folder, docPath)
      listed.push(rel)
      documents[rel] = await checkDocument(doc)
      report.check(
        '7.1.1 valid CSAF document',
        documents[rel].valid,
        `${rel} fails the library's schema or mandatory tests`
      )
      const tracking = doc.document?.tracking ?? {}
      report.check('7.1.15 ROLIE feed', entry.id === tracking.id, `${where}: id is not the document's tracking id`)
      report.check(
        '7.1.15 ROLIE feed',
        entry.updated === tracking.current_release_date &&
          entry.published === tracking.initial_release_date,
        `${where}: published/updated are not the document's release dates`
      )
      const name = rel.split('/').pop()
      report.check(
        '7.1.2 filename',
        name === expectedFilename(String(tracking.id)),
        `${rel} should be named ${expectedFilename(String(tracking.id))}`
      )
      report.check(
        '7.1.11 one folder per year',
        rel.split('/')[0] === String(tracking.initial_release_date).slice(0, 4),
        `${rel} is not in the folder of its initial release year`
      )
      const label = doc.document?.distribution?.tlp?.label
      report.check('7.1.4 TLP:WHITE', label === f.tlp_label, `${rel} is labelled ${label}, the feed ${f.tlp_label}`)
      for (const [algo, ext] of [
        ['sha256', '.sha256'],
        ['sha512', '.sha512'],
      ]) {
        report.check('7.1.18 integrity', links.hash?.length > 0, `${where}: no hash link`)
        const hashPath = docPath + ext
        const text = existsSync(hashPath) ? readFileSync(hashPath, 'utf8') : ''
        const want = createHash(algo).update(bytes).digest('hex')
        report.check('7.1.18 integrity', text.split(/\s/)[0] === want, `${rel}${ext} does not match the document`)
      }
      report.check(
        '7.1.18 integrity',
        (entry.link ?? []).filter((l) => l.rel === 'hash').map((l) => l.href).sort().join() ===
          [self + '.sha256', self + '.sha512'].sort().join(),
        `${where}: the hash links are not the .sha256 and .sha512 files`
      )
      const sigPath = docPath + '.asc'
      const sig = existsSync(sigPath) ? readFileSync(sigPath, 'utf8') : ''
      report.check('7.1.19 signatures', links.signature === self + '.asc', `${where}: no signature link`)
      report.check(
        '7.1.19 signatures',
        sig.startsWith('-----BEGIN PGP SIGNATURE-----'),
        `${rel}.asc is not an armored OpenPGP signature`
      )
    }
    // 12, 13: index.txt and changes.csv beside the year folders
    const index = existsSync(join(folder, 'index.txt')) ? readFileSync(join(folder, 'index.txt'), 'utf8') : null
    if (report.check('7.1.12 index.txt', index !== null, `${folder}/index.txt does not exist`)) {
      const lines = index.split('\n').filter(Boolean)
      report.check(
        '7.1.12 index.txt',
        lines.slice().sort().join() === listed.slice().sort().join(),
        `index.txt lists ${lines.join(', ')}; the feed lists ${listed.join(', ')}`
      )
    }
    const changesPath = join(folder, 'changes.csv')
    const changes = existsSync(changesPath) ? readFileSync(changesPath, 'utf8') : null
    if (report.check('7.1.13 changes.csv', changes !== null, `${changesPath} does not exist`)) {
      const rows = changes
        .split('\n')
        .filter(Boolean)
        .map((ln) => ln.split(',').map((c) => c.replace(/^"|"$/g, '')))
      report.check(
        '7.1.13 changes.csv',
        rows.map((r) => r[0]).sort().join() === listed.slice().sort().join(),
        `changes.csv lists ${rows.map((r) => r[0]).join(', ')}; the feed lists ${listed.join(', ')}`
      )
      for (const [name, when] of rows) {
        const doc = documents[name]
        const path = join(folder, name)
        const current = existsSync(path)
          ? JSON.parse(readFileSync(path, 'utf8')).document?.tracking?.current_release_date
          : undefined
        report.check('7.1.13 changes.csv', doc !== undefined && when === current, `${name}: ${when} is not its current_release_date`)
      }
      const times = rows.map((r) => r[1])
      report.check(
        '7.1.13 changes.csv',
        times.every((t, i) => i === 0 || times[i - 1] >= t),
        'changes.csv is not sorted newest first'
      )
    }
  }
  report.na('7.1.5 TLP:AMBER and TLP:RED', 'only TLP:WHITE documents are published')
  report.na('7.1.6 no redirects', 'a property of the web server, not of the tree')
  report.na('7.1.8 security.txt', 'one of 8, 9, 10 is enough: 9 (well-known URL) is used')
  report.na('7.1.10 DNS path', 'one of 8, 9, 10 is enough: 9 (well-known URL) is used')
  report.na('7.1.14 directory listings', 'a property of the web server; the ROLIE feed (15) is used')
  report.na('7.1.16 ROLIE service document', 'optional')
  report.na('7.1.17 ROLIE category document', 'optional')
  const ok = Object.values(report.requirements).every((r) => r.ok)
  return { ok, requirements: report.requirements, documents }
}

async function main(argv) {
  const [mode, ...args] = argv
  if (mode === 'document' && args.length >= 1) {
    const out = {}
    for (const path of args) {
      out[path] = await checkDocument(JSON.parse(readFileSync(path, 'utf8')))
    }
    return args.length === 1 ? out[args[0]] : out
  }
  if (mode === 'provider' && args.length === 2) {
    return checkProvider(args[0], args[1])
  }
  process.stderr.write(
    'usage: node validate.mjs document FILE.json [FILE.json ...]\n' +
      '       node validate.mjs provider PUBLIC_DIR BASE_URL\n'
  )
  process.exit(2)
}

process.stdout.write(JSON.stringify(await main(process.argv.slice(2)), null, 1) + '\n')
