/** The page's HTML and CSS (the script is app.js, bundled by bundle.ts). */
export function pageHtml(): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>factorgen: sample in the browser</title><link rel="icon" href="data:,">
<style>
body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:1100px;padding:0 1em;color:#222}
h1{font-size:1.4em;margin:0 0 .2em}.meta{color:#555;font-size:.9em;margin:.1em 0}
form{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:.6em 1em;margin:1em 0;align-items:end}
form label{display:flex;flex-direction:column;font-size:.85em;color:#444}
form input{font:inherit;padding:.25em .4em;margin-top:.15em}
fieldset{border:1px solid #ccc;margin:0;padding:.5em .8em}
#classes{display:flex;flex-wrap:wrap;gap:.2em 1em}#classes label{flex-direction:row;font-size:.9em;color:#222;align-items:center}
.buttons{display:flex;gap:.6em;align-items:center;margin:.6em 0}
button{font:inherit;padding:.35em 1.1em}
#progress{width:280px;height:1em}
#error{color:#b00020;background:#fdecee;border:1px solid #f3b6bf;padding:.5em .8em;margin:.8em 0}
#grid{margin-top:1em}.row{display:flex;align-items:center;gap:4px;margin-bottom:4px}
.label{width:9em;font-size:.9em;text-align:right;padding-right:.6em;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.cell{width:84px;height:84px;image-rendering:pixelated;background:#eee}
</style></head>
<body data-state="loading">
<h1>factorgen: sample in the browser</h1>
<p class="meta">backend: <span id="backend">starting…</span></p>
<p class="meta">model: <span id="model">loading…</span></p>
<div id="error" hidden></div>
<fieldset><legend>classes <button type="button" id="all">all</button> <button type="button" id="none">none</button></legend><div id="classes"></div></fieldset>
<form id="settings" onsubmit="return false">
<label>images per class<input id="per-class" type="number" min="1" max="64" value="4"></label>
<label>guidance (1 = off)<input id="cfg" type="number" min="0" step="0.1" value="2"></label>
<label>temperature<input id="temperature" type="number" min="0.01" step="0.05" value="1"></label>
<label>top-k (0 = off)<input id="top-k" type="number" min="0" step="1" value="0"></label>
<label>top-p (1 = off)<input id="top-p" type="number" min="0.01" max="1" step="0.01" value="1"></label>
<label>seed<input id="seed" type="text" value="0"></label>
<label>batch (images at once)<input id="batch" type="number" min="1" step="1" value="40"></label>
</form>
<div class="buttons"><button id="sample" disabled>Sample</button><button id="download" disabled>Download PNG</button>
<progress id="progress" value="0" max="1"></progress><span id="progress-text"></span></div>
<div id="grid"></div>
<script type="module" src="app.js"></script>
</body></html>
`;
}
