// build.mjs writes dist/vendor/, the xterm.js files package webui embeds
// beside src/ (which it serves as written), from the pinned packages in
// node_modules (npm ci). No bundler: the vendor files are already ES
// modules without imports, so they are copied as they are, less their
// source-map comment (the maps are not shipped), with their licences. The
// output depends only on the input: same files, same bytes.
//
//   dist/vendor/*     xterm.mjs, xterm.css, the addons, LICENSEs
//                     (served at /assets/vendor/)
//
// Run it with `make web` (which runs npm ci first).

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(root, 'src');
const dist = path.join(root, 'dist');
const modules = path.join(root, 'node_modules');

function fail(msg) {
  console.error(`build.mjs: ${msg}`);
  process.exit(1);
}

// The vendor files: [package, file in it, name in dist/vendor].
const vendor = [
  ['@xterm/xterm', 'lib/xterm.mjs', 'xterm.mjs'],
  ['@xterm/xterm', 'css/xterm.css', 'xterm.css'],
  ['@xterm/xterm', 'LICENSE', 'LICENSE.xterm.txt'],
  ['@xterm/addon-fit', 'lib/addon-fit.mjs', 'addon-fit.mjs'],
  ['@xterm/addon-fit', 'LICENSE', 'LICENSE.addon-fit.txt'],
  ['@xterm/addon-web-links', 'lib/addon-web-links.mjs', 'addon-web-links.mjs'],
  ['@xterm/addon-web-links', 'LICENSE', 'LICENSE.addon-web-links.txt'],
  ['@xterm/addon-webgl', 'lib/addon-webgl.mjs', 'addon-webgl.mjs'],
  ['@xterm/addon-webgl', 'LICENSE', 'LICENSE.addon-webgl.txt'],
];

// A module specifier that is neither relative nor absolute ("@xterm/xterm")
// needs an import map, which the CSP's script-src 'self' forbids inline.
const bareImport = /(?:\bimport\s*(?:[\w*{}\s,$]+\s*from\s*)?|\bexport\s*[\w*{}\s,$]*\s*from\s*|\bimport\s*\(\s*)["'](?![./])([^"']+)["']/;

function checkNoGoFiles(dir) {
  // `go vet ./...` and `go test ./...` walk node_modules like any other
  // directory; a package shipping .go files would become part of the
  // module. None of ours does; fail loudly if that ever changes.
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) checkNoGoFiles(p);
    else if (entry.name.endsWith('.go')) {
      fail(`${path.relative(root, p)} is a Go file inside node_modules: go ./... would build it; remove that package or add an empty go.mod to exclude it`);
    }
  }
}

if (!fs.existsSync(modules)) fail('node_modules is missing: run `npm ci` first (make web does)');
checkNoGoFiles(modules);

const expected = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).dependencies;
for (const [name, version] of Object.entries(expected)) {
  const pkg = JSON.parse(fs.readFileSync(path.join(modules, name, 'package.json'), 'utf8'));
  if (pkg.version !== version) fail(`${name} is ${pkg.version} in node_modules, package.json pins ${version}: run npm ci`);
}

fs.rmSync(dist, { recursive: true, force: true });
fs.mkdirSync(path.join(dist, 'vendor'), { recursive: true });
if (fs.existsSync(path.join(src, 'vendor'))) fail('src/vendor would shadow the vendor files at /assets/vendor: rename it');

for (const [pkg, file, name] of vendor) {
  let data = fs.readFileSync(path.join(modules, pkg, file));
  if (name.endsWith('.mjs')) {
    let text = data.toString('utf8');
    const m = bareImport.exec(text);
    if (m) fail(`${pkg}/${file} imports the bare specifier "${m[1]}", which the page cannot resolve without an import map`);
    text = text.replace(/\n\/\/# sourceMappingURL=\S+\s*$/, '\n');
    data = Buffer.from(text, 'utf8');
  }
  fs.writeFileSync(path.join(dist, 'vendor', name), data);
}

console.log(`build.mjs: wrote ${path.relative(process.cwd(), dist) || '.'}`);
