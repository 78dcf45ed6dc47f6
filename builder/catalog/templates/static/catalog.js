// scistacks catalog: the filter boxes and copy buttons (the site works without it).
// Version constraints follow conda's syntax and order (what builder/catalog/search.py
// evaluates with rattler): ==X exact, =X / X.* / X* prefix, >=, <=, >, <, !=, ~=,
// "," for and, "|" for or; a bare X is exact.
"use strict";
(function () {
  function parts(v) {
    v = String(v).toLowerCase().replace(/\+.*$/, "");
    var epoch = 0, bang = v.indexOf("!");
    if (bang >= 0) { epoch = parseInt(v.slice(0, bang), 10) || 0; v = v.slice(bang + 1); }
    var out = [[epoch]];
    v.split(/[._-]/).forEach(function (c) {
      var atoms = c.match(/\d+|[a-z]+|\*/g) || [0];
      var comp = atoms.map(function (a) { return /^\d+$/.test(a) ? parseInt(a, 10) : a; });
      if (typeof comp[0] === "string") comp.unshift(0);
      out.push(comp);
    });
    return out;
  }
  function atomCmp(a, b) {
    if (typeof a === typeof b) {
      if (typeof a === "string") {
        if (a === b) return 0;
        if (a === "dev") return -1; if (b === "dev") return 1;
        if (a === "post") return 1; if (b === "post") return -1;
        return a < b ? -1 : 1;
      }
      return a < b ? -1 : a > b ? 1 : 0;
    }
    if (typeof a === "string") return a === "post" ? 1 : -1;
    return b === "post" ? -1 : 1;
  }
  function compCmp(x, y) {
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      var c = atomCmp(i < x.length ? x[i] : 0, i < y.length ? y[i] : 0);
      if (c) return c;
    }
    return 0;
  }
  function cmp(a, b) {
    var x = parts(a), y = parts(b);
    for (var i = 0; i < Math.max(x.length, y.length); i++) {
      var c = compCmp(i < x.length ? x[i] : [0], i < y.length ? y[i] : [0]);
      if (c) return c;
    }
    return 0;
  }
  function startsWith(version, prefix) {
    var x = parts(version), y = parts(prefix.replace(/[.*]+$/, ""));
    if (y.length > x.length) return false;
    for (var i = 0; i < y.length; i++) if (compCmp(x[i], y[i]) !== 0) return false;
    return true;
  }
  function one(version, c) {
    var m = c.match(/^(==|!=|>=|<=|~=|>|<|=)?(.+)$/);
    if (!m) return false;
    var op = m[1] || "", v = m[2], glob = /\*$/.test(v);
    if (op === "~=") {
      var p = v.split(".");
      return cmp(version, v) >= 0 && startsWith(version, p.slice(0, -1).join("."));
    }
    if (op === "=" || (op === "" && glob) || (op === "==" && glob)) return startsWith(version, v);
    if (op === "!=") return glob ? !startsWith(version, v) : cmp(version, v) !== 0;
    var d = cmp(version, v.replace(/[.*]+$/, ""));
    return { "": d === 0, "==": d === 0, ">=": d >= 0, "<=": d <= 0, ">": d > 0, "<": d < 0 }[op];
  }
  function matches(version, spec) {
    if (!spec || spec === "*") return true;
    return spec.split("|").some(function (alt) {
      return alt.split(",").every(function (c) { return c && one(version, c); });
    });
  }
  function parseQuery(text) {
    text = text.replace(/≥/g, ">=").replace(/≤/g, "<=").replace(/≠/g, "!=");
    var m = text.match(/^\s*([A-Za-z0-9][A-Za-z0-9_.\-]*)\s*(.*?)\s*$/);
    return m ? { name: m[1].toLowerCase(), spec: m[2].replace(/\s+/g, "") } : null;
  }
  window.scistacksCatalog = { matches: matches, compare: cmp, parseQuery: parseQuery };

  function filter(input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    var rows = table.tBodies[0].rows, shown = 0, groups = {};
    var text = input.value.trim(), spec = input.getAttribute("data-mode") === "spec";
    var q = spec ? parseQuery(text) : null, needle = text.toLowerCase();
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i], ok;
      if (!text) ok = true;
      else if (spec) ok = !!q && row.getAttribute("data-name") === q.name &&
        matches(row.getAttribute("data-version"), q.spec);
      else ok = row.textContent.toLowerCase().indexOf(needle) >= 0;
      row.hidden = !ok;
      if (ok) { shown++; if (row.hasAttribute("data-group")) groups[row.getAttribute("data-group")] = 1; }
    }
    var status = input.parentNode.querySelector(".filter-status");
    if (status) {
      var names = Object.keys(groups);
      status.textContent = !text ? "" : shown === 0 ? "No match." :
        shown + (shown === 1 ? " row" : " rows") +
        (spec && names.length ? " in " + names.join(", ") : "") + ".";
    }
  }
  function copy(button) {
    var text = document.getElementById(button.getAttribute("data-copy")).textContent;
    var done = function () {
      button.textContent = "Copied";
      setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { button.textContent = "Press Ctrl+C"; });
    } else {
      var area = document.createElement("textarea");
      area.value = text; document.body.appendChild(area); area.select();
      try { document.execCommand("copy"); done(); } catch (e) { button.textContent = "Press Ctrl+C"; }
      document.body.removeChild(area);
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var inputs = document.querySelectorAll("input[data-filter]");
    Array.prototype.forEach.call(inputs, function (input) {
      var param = input.getAttribute("data-url-param");
      if (param) {
        var value = new URLSearchParams(window.location.search).get(param);
        if (value) input.value = value;
      }
      input.addEventListener("input", function () { filter(input); });
      if (input.value) filter(input);
    });
    Array.prototype.forEach.call(document.querySelectorAll("button[data-copy]"), function (b) {
      b.hidden = false;
      b.addEventListener("click", function () { copy(b); });
    });
  });
})();
