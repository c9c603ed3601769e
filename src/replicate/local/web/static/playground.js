// The playground of a model page (see web/playground.py for the form it reads).
// Every value from the user, the model or the server is put in the page with textContent or
// DOM properties, never as HTML. The API token (when the server asks for one) lives in a variable
// and in this tab's sessionStorage only.
(function () {
  "use strict";
  var form = document.getElementById("playground");
  if (!form) { return; }
  var model = form.getAttribute("data-model");
  var textOutput = form.getAttribute("data-output") === "concat";
  var tokenMode = form.getAttribute("data-token");
  var KEY = "replicate-local-token";
  var el = function (id) { return document.getElementById(id); };
  var runButton = el("pg-run"), cancelButton = el("pg-cancel"), statusBox = el("pg-status");
  var errorBox = el("pg-error"), result = el("pg-result"), outputBox = el("pg-output");
  var logsBox = el("pg-logs"), link = el("pg-link"), tokenInput = el("pg-token");
  var TERMINAL = {succeeded: 1, failed: 1, canceled: 1, aborted: 1};
  var current = null;  // {id, urls, source, timer, done}

  var token = tokenMode === "required" ? "" : tokenMode;
  if (tokenInput) {
    try { token = sessionStorage.getItem(KEY) || ""; } catch (e) { token = ""; }
    tokenInput.value = token;
    tokenInput.addEventListener("input", function () {
      token = tokenInput.value.trim();
      try { sessionStorage.setItem(KEY, token); } catch (e) { /* storage disabled */ }
    });
  }

  function fields() { return Array.prototype.slice.call(form.querySelectorAll(".field[data-kind]")); }
  function control(f) { return document.getElementById("in-" + f.getAttribute("data-name")); }
  function defaultOf(f) {
    var raw = f.getAttribute("data-default");
    if (!raw) { return undefined; }
    try { return JSON.parse(raw); } catch (e) { return undefined; }
  }
  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }
  function typed(text, type) {
    if (type === "integer" || type === "number") {
      var n = Number(text);
      if (text.trim() === "" || isNaN(n)) { throw new Error("expected a number, got " + JSON.stringify(text)); }
      return n;
    }
    if (type === "boolean") { return /^(true|1|yes|on)$/i.test(text.trim()); }
    if (type === "string") { return text; }
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  // One field's value: {value} to send, {file(s)} to upload first, or null to leave it out.
  function read(f) {
    var name = f.getAttribute("data-name"), kind = f.getAttribute("data-kind"), c = control(f);
    var dflt = defaultOf(f), v;
    if (kind === "boolean") {
      v = c.checked;
      return same(v, dflt === undefined ? false : dflt) ? null : {value: v};
    }
    if (kind === "file") {
      if (c.files && c.files.length) { return {file: c.files[0]}; }
      var url = document.getElementById("url-" + name).value.trim();
      return url ? {value: url} : null;
    }
    if (kind === "files") { return c.files && c.files.length ? {files: Array.prototype.slice.call(c.files)} : null; }
    if (kind === "enum") {
      if (c.value === "") { return null; }
      v = JSON.parse(c.getAttribute("data-choices"))[Number(c.value)];
      return same(v, dflt) ? null : {value: v};
    }
    var text = c.value;
    if (text.trim() === "" && kind !== "string") { return null; }
    if (kind === "string" && text === "") { return null; }
    if (kind === "integer" || kind === "number") {
      v = Number(text);
      if (isNaN(v)) { throw new Error(name + ": expected a number"); }
    } else if (kind === "array") {
      var item = f.getAttribute("data-item") || "any";
      v = text.split("\n").filter(function (s) { return s.trim() !== ""; })
        .map(function (s) { return typed(s, item); });
    } else if (kind === "json") {
      try { v = JSON.parse(text); } catch (e) { throw new Error(name + ": not valid JSON (" + e.message + ")"); }
    } else {
      v = text;
    }
    return same(v, dflt) ? null : {value: v};
  }

  // ------------------------------------------------------------------ equivalent code
  function shq(s) { return /^[A-Za-z0-9_@%+=:,.\/-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'"; }
  function cliValue(v) { return typeof v === "string" ? v : JSON.stringify(v); }
  function py(v) {
    if (v === null || v === undefined) { return "None"; }
    if (v === true) { return "True"; }
    if (v === false) { return "False"; }
    if (Array.isArray(v)) { return "[" + v.map(py).join(", ") + "]"; }
    if (v && v.__file) { return "open(" + JSON.stringify(v.__file) + ", \"rb\")"; }
    if (typeof v === "object") {
      return "{" + Object.keys(v).map(function (k) { return JSON.stringify(k) + ": " + py(v[k]); }).join(", ") + "}";
    }
    return JSON.stringify(v);
  }
  function describe() {
    var cli = ["replicate run", shq(model)], body = "";
    fields().forEach(function (f) {
      var r; try { r = read(f); } catch (e) { return; }
      if (r === null) { return; }
      var name = f.getAttribute("data-name"), pv;
      if (r.file) {
        cli.push("-i " + shq(name + "=@" + r.file.name)); pv = {__file: r.file.name};
      } else if (r.files) {
        r.files.forEach(function (x) { cli.push("-i " + shq(name + "=@" + x.name)); });
        pv = r.files.map(function (x) { return {__file: x.name}; });
      } else {
        cli.push("-i " + shq(name + "=" + cliValue(r.value))); pv = r.value;
      }
      body += "        " + JSON.stringify(name) + ": " + py(pv) + ",\n";
    });
    el("pg-cli").textContent = cli.join(" ");
    el("pg-python").textContent = "import replicate\n\noutput = replicate.run(\n    " +
      JSON.stringify(model) + ",\n    input={" + (body ? "\n" + body + "    " : "") + "},\n)\nprint(output)";
  }

  // ------------------------------------------------------------------ API calls
  function api(method, path, body, isForm) {
    var h = {Authorization: "Bearer " + token};
    if (body !== undefined && !isForm) { h["Content-Type"] = "application/json"; }
    return fetch(path, {method: method, headers: h, cache: "no-store",
                        body: body === undefined ? undefined : (isForm ? body : JSON.stringify(body))})
      .then(function (r) {
        return r.text().then(function (text) {
          var doc = null;
          try { doc = JSON.parse(text); } catch (e) { doc = null; }
          if (!r.ok) {
            var msg = doc && (doc.detail || doc.title) ? String(doc.detail || doc.title) : "HTTP " + r.status;
            if (r.status === 401 && tokenInput) { msg = "The server did not accept the API token. " + msg; tokenInput.focus(); }
            throw new Error(msg);
          }
          return doc;
        });
      });
  }
  function upload(file) {
    var data = new FormData();
    data.append("content", file, file.name);
    data.append("filename", file.name);
    if (file.type) { data.append("type", file.type); }
    return api("POST", "/v1/files", data, true).then(function (doc) { return doc.urls.get; });
  }
  function path(url) {  // the server's own absolute URLs, as paths (the CSP allows 'self' only)
    var u = new URL(url, location.href);
    return u.pathname + u.search;
  }

  // ------------------------------------------------------------------ rendering
  function httpUrl(s) {
    if (typeof s !== "string") { return null; }
    try { var u = new URL(s); } catch (e) { return null; }
    return u.protocol === "http:" || u.protocol === "https:" ? u : null;
  }
  function isFile(s) { return httpUrl(s) !== null || (typeof s === "string" && /^data:/.test(s)); }
  function add(parent, tag, text, cls) {
    var n = document.createElement(tag);
    if (text !== undefined) { n.textContent = text; }
    if (cls) { n.className = cls; }
    parent.appendChild(n);
    return n;
  }
  function media(parent, s) {
    var box = add(parent, "div", undefined, "media"), u = httpUrl(s);
    var name = u ? decodeURIComponent(u.pathname.split("/").pop() || s) : "data: URI";
    var ext = (name.split(".").pop() || "").toLowerCase(), n;
    var dtype = /^data:([^;,]*)/.exec(s);
    if ((dtype && /^image\//.test(dtype[1])) || /^(png|jpe?g|gif|webp|svg|bmp|avif)$/.test(ext)) {
      n = add(box, "img"); n.src = s; n.alt = name;
    } else if (/^(mp3|wav|ogg|flac|m4a)$/.test(ext)) {
      n = add(box, "audio"); n.controls = true; n.src = s;
    } else if (/^(mp4|webm|mov)$/.test(ext)) {
      n = add(box, "video"); n.controls = true; n.src = s;
    }
    var cap = add(box, "div", undefined, "cap");
    if (u) {
      var a = add(cap, "a", name); a.href = u.href; a.target = "_blank"; a.rel = "noopener noreferrer";
    } else {
      cap.textContent = name;
    }
  }
  function gallery(parent, v) {
    if (typeof v === "string") { if (isFile(v)) { media(parent, v); } return; }
    if (Array.isArray(v)) { v.forEach(function (x) { gallery(parent, x); }); return; }
    if (v && typeof v === "object") { Object.keys(v).forEach(function (k) { gallery(parent, v[k]); }); }
  }
  function renderOutput(v) {
    outputBox.textContent = "";
    if (v === null || v === undefined) { add(outputBox, "p", "No output.", "note"); return; }
    if (typeof v === "string") { if (isFile(v)) { media(outputBox, v); } else { add(outputBox, "pre", v); } return; }
    var strings = Array.isArray(v) && v.every(function (x) { return typeof x === "string"; });
    if (strings && v.length && v.every(isFile)) { v.forEach(function (x) { media(outputBox, x); }); return; }
    if (strings && textOutput) { add(outputBox, "pre", v.join("")); return; }
    add(outputBox, "pre", JSON.stringify(v, null, 2));
    gallery(outputBox, v);
  }
  function setStatus(s) { statusBox.textContent = s; statusBox.className = "status " + s; }
  function fail(msg) { errorBox.textContent = msg; }

  // ------------------------------------------------------------------ following a prediction
  function finish(p) {
    if (current === null || current.id !== p.id || current.done) { return; }
    current.done = true;
    if (current.source) { current.source.close(); }
    clearTimeout(current.timer);
    setStatus(p.status);
    if (typeof p.logs === "string") { logsBox.textContent = p.logs; }
    renderOutput(p.output);
    if (p.error) { fail(String(p.error)); }
    runButton.disabled = false;
    cancelButton.hidden = true;
  }
  function poll() {
    var id = current.id;
    api("GET", "/v1/predictions/" + encodeURIComponent(id)).then(function (p) {
      if (current === null || current.id !== id || current.done) { return; }
      if (TERMINAL[p.status]) { finish(p); return; }
      setStatus(p.status);
      if (!current.source) {
        if (typeof p.logs === "string" && p.logs !== logsBox.textContent) { logsBox.textContent = p.logs; }
        if (p.output !== null && p.output !== undefined) { renderOutput(p.output); }
      }
      current.timer = setTimeout(poll, current.source ? 2000 : 400);
    }).catch(function (err) {
      if (current && current.id === id) { fail(err.message); current.timer = setTimeout(poll, 2000); }
    });
  }
  function stream(p) {
    var es = new EventSource(path(p.urls.stream)), streamed = [], pre = null;
    current.source = es;
    es.addEventListener("output", function (ev) {
      if (textOutput) {
        if (pre === null) { outputBox.textContent = ""; pre = add(outputBox, "pre"); }
        pre.textContent += ev.data;
      } else {
        streamed.push(ev.data);
        renderOutput(streamed.length === 1 ? ev.data : streamed);
      }
    });
    es.addEventListener("logs", function (ev) { logsBox.textContent += ev.data + "\n"; });
    es.addEventListener("error", function (ev) {
      if (ev.data) { try { fail(JSON.parse(ev.data).detail || ev.data); } catch (e) { fail(ev.data); } }
    });
    es.addEventListener("done", function () {
      es.close();
      current.source = null;
      clearTimeout(current.timer);
      poll();
    });
  }
  function follow(p) {
    current = {id: p.id, urls: p.urls || {}, source: null, timer: null, done: false};
    setStatus(p.status);
    if (p.urls && p.urls.web) { link.href = path(p.urls.web); link.hidden = false; }
    cancelButton.hidden = false;
    if (p.urls && p.urls.stream) { stream(p); }
    current.timer = setTimeout(poll, current.source ? 1000 : 0);
  }

  // ------------------------------------------------------------------ wiring
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    fail("");
    if (tokenInput && !token) { fail("Enter an API token of this server first."); tokenInput.focus(); return; }
    var input = {}, uploads = [];
    try {
      fields().forEach(function (f) {
        var r = read(f), name = f.getAttribute("data-name");
        if (r === null) { return; }
        if (r.file) {
          uploads.push(upload(r.file).then(function (url) { input[name] = url; }));
        } else if (r.files) {
          var urls = [];
          input[name] = urls;
          r.files.forEach(function (x, i) { uploads.push(upload(x).then(function (url) { urls[i] = url; })); });
        } else {
          input[name] = r.value;
        }
      });
    } catch (err) { fail(err.message); return; }
    runButton.disabled = true;
    if (current && current.source) { current.source.close(); }
    if (current) { clearTimeout(current.timer); }
    current = null;
    result.hidden = false;
    outputBox.textContent = "";
    logsBox.textContent = "";
    link.hidden = true;
    setStatus(uploads.length ? "uploading" : "starting");
    Promise.all(uploads).then(function () {
      return api("POST", "/v1/models/" + model + "/predictions", {input: input, stream: true});
    }).then(follow).catch(function (err) {
      fail(err.message);
      setStatus("");
      runButton.disabled = false;
    });
  });
  cancelButton.addEventListener("click", function () {
    if (current && !current.done && current.urls.cancel) {
      api("POST", path(current.urls.cancel)).catch(function (err) { fail(err.message); });
    }
  });
  form.querySelectorAll("input[type=range]").forEach(function (r) {
    var box = document.getElementById(r.getAttribute("data-for"));
    r.addEventListener("input", function () { box.value = r.value; describe(); });
    box.addEventListener("input", function () { if (box.value !== "") { r.value = box.value; } });
  });
  form.addEventListener("input", describe);
  form.addEventListener("change", describe);
  describe();
  form.setAttribute("data-ready", "1");
})();
