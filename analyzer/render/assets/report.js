/* analyzer HTML report: graph, details, charts and node table drawn from the embedded JSON.
 *
 * Every number shown comes from the report (or the layout computed in Python); this script only
 * formats, colours and draws. Vanilla JS, no network. Hosts in the page say what to mount:
 *   .graph-host[data-panel=i], .charts-host[data-panel=i], .table-host[data-panel=i] for data.panels[i]
 *   (one model's report and layout), .latency-host
 * Tests rely on: rect.node[data-node] (one per report node), [data-field=macs] in the details panel,
 * select#metric, g.viewport's transform, tr[data-index] in the node table.
 */
(function () {
  'use strict';

  const data = JSON.parse(document.getElementById('analyzer-data').textContent);
  // The namespace is read from an <svg> the HTML parser made, so the page holds no URL at all.
  const SVG_NS = document.getElementById('svg-namespace').namespaceURI;

  // ---------- formatting (matches analyzer/units.py) ----------
  function exact(n) { return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  function count(n) {
    const a = Math.abs(n);
    for (const [f, s] of [[1e12, 'T'], [1e9, 'G'], [1e6, 'M'], [1e3, 'K']]) if (a >= f) return (n / f).toFixed(2) + s;
    return Number.isInteger(n) ? String(n) : n.toFixed(2);
  }
  function nbytes(n) {
    const a = Math.abs(n);
    for (const [f, s] of [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB']]) if (a >= f) return (n / f).toFixed(2) + ' ' + s;
    return Math.trunc(n) + ' B';
  }
  function shape(dims) { return dims == null ? '?' : (dims.map(d => d == null ? '?' : String(d)).join('x') || 'scalar'); }
  function rfSize(rf) { return rf && rf.size.length ? Math.max(...rf.size) : 0; }
  function rfText(rf) {
    if (!rf) return '';
    const size = rf.global ? 'global' : rf.size.join('x');
    const stride = new Set(rf.stride).size > 1 ? rf.stride.join('x') : (rf.stride.length ? String(rf.stride[0]) : '');
    return (stride ? size + ' /' + stride : size) + (rf.aligned ? '' : ' !');
  }
  function esc(s) {
    return String(s).replace(/[&<>"']/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
  }
  function ms(seconds) { return (seconds * 1e3).toFixed(3) + ' ms'; }

  const METRICS = {
    macs: { label: 'MACs', value: n => n.macs, format: count },
    params: { label: 'params', value: n => n.params, format: count },
    activation_bytes: { label: 'activation bytes', value: n => n.activation_bytes, format: nbytes },
    receptive_field: { label: 'receptive field size', value: n => rfSize(n.receptive_field), format: v => v + ' px', text: n => rfText(n.receptive_field) || '–' },
    flops: { label: 'FLOPs', value: n => n.flops, format: count },
    weight_bytes: { label: 'weight bytes', value: n => n.weight_bytes, format: nbytes },
  };
  for (const m of Object.values(METRICS)) if (!m.text) m.text = n => m.format(m.value(n));

  // ---------- colour: log-scaled sequential ramp, zero in grey ----------
  const RAMP = [[255, 247, 214], [253, 208, 118], [249, 140, 62], [217, 71, 43], [140, 29, 63], [61, 10, 77]];
  const ZERO_FILL = '#e9ecef';
  function rampAt(t) {
    const x = Math.min(Math.max(t, 0), 1) * (RAMP.length - 1), i = Math.min(Math.floor(x), RAMP.length - 2), f = x - i;
    const c = RAMP[i].map((v, k) => Math.round(v + (RAMP[i + 1][k] - v) * f));
    return 'rgb(' + c.join(',') + ')';
  }
  function domainOf(values) {
    let lo = Infinity, hi = 0;
    for (const v of values) if (v > 0) { if (v < lo) lo = v; if (v > hi) hi = v; }
    return hi > 0 ? [lo, hi] : null;
  }
  function scaleT(v, domain) {
    if (!(v > 0) || !domain) return null;
    const [lo, hi] = domain;
    return hi > lo ? (Math.log(v) - Math.log(lo)) / (Math.log(hi) - Math.log(lo)) : 1;
  }
  function fillFor(t) { return t == null ? ZERO_FILL : rampAt(t); }
  function inkFor(t) { return t != null && t > 0.55 ? '#fff' : '#1f2328'; }

  function svgEl(tag, attrs, parent) {
    const el = document.createElementNS(SVG_NS, tag);
    for (const k in attrs) el.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(el);
    return el;
  }
  function div(cls, parent, html) {
    const el = document.createElement('div');
    if (cls) el.className = cls;
    if (html != null) el.innerHTML = html;
    if (parent) parent.appendChild(el);
    return el;
  }

  // ---------- details panel ----------
  function tensorList(tensors) {
    return tensors.map(t => '<div class="tensor">' + esc(t.name) + ': ' + esc(shape(t.shape)) + ' ' + esc(t.dtype) + '</div>').join('') || '–';
  }
  function exactRow(label, field, value, human) {
    return '<dt>' + label + '</dt><dd><span data-field="' + field + '">' + exact(value) + '</span>' +
      (human ? ' <small>(' + esc(human) + ')</small>' : '') + '</dd>';
  }
  function detailsHtml(node, index) {
    const rf = node.receptive_field;
    const rfDetail = rf ? 'size ' + rf.size.join('x') + ', stride ' + rf.stride.join('x') + ', padding ' + rf.padding.join('x') +
      (rf.global ? ', global' : '') + (rf.aligned ? '' : ', misaligned merge') : 'none';
    return '<h4>#' + index + ' ' + esc(node.name) + '</h4><dl>' +
      '<dt>op</dt><dd data-field="op_type">' + esc(node.op_type) + (node.domain ? ' <small>(' + esc(node.domain) + ')</small>' : '') + '</dd>' +
      '<dt>name</dt><dd data-field="name">' + esc(node.name) + '</dd>' +
      '<dt>module</dt><dd data-field="module">' + esc(node.module || '–') + '</dd>' +
      '<dt>inputs</dt><dd data-field="inputs">' + tensorList(node.inputs) + '</dd>' +
      '<dt>outputs</dt><dd data-field="outputs">' + tensorList(node.outputs) + '</dd>' +
      exactRow('params', 'params', node.params, count(node.params)) +
      exactRow('MACs', 'macs', node.macs, count(node.macs)) +
      exactRow('FLOPs', 'flops', node.flops, count(node.flops)) +
      exactRow('weight bytes', 'weight_bytes', node.weight_bytes, nbytes(node.weight_bytes)) +
      exactRow('activation bytes', 'activation_bytes', node.activation_bytes, nbytes(node.activation_bytes)) +
      exactRow('live after', 'live_bytes', node.live_bytes, nbytes(node.live_bytes)) +
      '<dt>receptive field</dt><dd data-field="receptive_field">' + esc(rfDetail) + '</dd>' +
      '<dt>category</dt><dd data-field="category">' + esc(node.category) + '</dd>' +
      '<dt>supported</dt><dd data-field="supported">' + (node.supported ? 'yes' : 'no (counted as 0)') + '</dd>' +
      '</dl><details><summary>full record (JSON)</summary><pre>' + esc(JSON.stringify(node, null, 1)) + '</pre></details>';
  }

  // ---------- graph ----------
  const LABEL_MIN_SCALE = 0.42; // below this, 11px labels would be unreadable: draw none
  const MAX_LABELS = 1500;

  function edgePath(points) {
    let d = 'M' + points[0] + ',' + points[1];
    for (let k = 2; k < points.length; k += 2) {
      const x0 = points[k - 2], y0 = points[k - 1], x1 = points[k], y1 = points[k + 1], ym = (y0 + y1) / 2;
      d += 'C' + x0 + ',' + ym + ' ' + x1 + ',' + ym + ' ' + x1 + ',' + y1;
    }
    return d;
  }

  function createGraph(host, panel, hooks) {
    const nodes = panel.report.nodes, lay = panel.layout;
    const wrap = div('graph-wrap', host);
    const viewEl = div('graph-view', wrap);
    const svg = svgEl('svg', { class: 'graph', 'aria-label': 'graph of ' + panel.label }, viewEl);
    const viewport = svgEl('g', { class: 'viewport' }, svg);
    const edges = svgEl('path', { class: 'edges' }, viewport);
    const selectedEdges = svgEl('path', { class: 'edges-selected' }, viewport);
    const terminals = svgEl('g', { class: 'terminals' }, viewport);
    const nodeLayer = svgEl('g', { class: 'nodes' }, viewport);
    const labels = svgEl('g', { class: 'labels' }, viewport);
    const controls = div('graph-controls', viewEl,
      '<button type="button" data-action="fit" title="fit the whole graph">fit</button>' +
      '<button type="button" data-action="zoom-in" title="zoom in">+</button>' +
      '<button type="button" data-action="zoom-out" title="zoom out">−</button>');
    const status = div('graph-status', viewEl);
    const tooltip = div('tooltip', viewEl);
    tooltip.hidden = true;
    const details = document.createElement('aside');
    details.className = 'details';
    details.innerHTML = '<p class="hint">Click a node (or a table row) to see its full record.</p>';
    wrap.appendChild(details);

    edges.setAttribute('d', lay.edges.map(e => edgePath(e[2])).join(''));
    terminals.innerHTML = lay.terminals.map(t => {
      const [x, y, w, h] = t.box;
      const name = t.name.length > 16 ? t.name.slice(0, 15) + '…' : t.name;
      return '<rect class="terminal ' + t.kind + '" data-terminal="' + esc(t.name) + '" x="' + (x - w / 2) + '" y="' + (y - h / 2) +
        '" width="' + w + '" height="' + h + '" rx="11"><title>graph ' + t.kind + ' ' + esc(t.name) + '</title></rect>' +
        '<text class="terminal-label" x="' + x + '" y="' + y + '">' + esc(name) + '</text>';
    }).join('');
    // One element per node, built as one string: the cheapest way to thousands of rects.
    nodeLayer.innerHTML = nodes.map((n, i) => {
      const [x, y, w, h] = lay.nodes[i];
      return '<rect class="node' + (n.supported ? '' : ' unsupported') + '" data-node="' + esc(n.name) + '" data-index="' + i +
        '" x="' + (x - w / 2).toFixed(1) + '" y="' + (y - h / 2).toFixed(1) + '" width="' + w + '" height="' + h + '" rx="4"></rect>';
    }).join('');
    const rects = Array.from(nodeLayer.children);
    status.textContent = nodes.length + ' nodes, ' + lay.layers + ' layers';

    let metric = 'macs', domain = null, tValues = new Array(nodes.length).fill(null);
    let k = 1, tx = 0, ty = 0, selected = -1, labelFrame = 0;

    function apply() {
      viewport.setAttribute('transform', 'translate(' + tx.toFixed(2) + ',' + ty.toFixed(2) + ') scale(' + k.toFixed(5) + ')');
      if (!labelFrame) labelFrame = requestAnimationFrame(() => { labelFrame = 0; drawLabels(); });
    }
    function size() { return [viewEl.clientWidth || 800, viewEl.clientHeight || 600]; }
    function fitScale() { const [W, H] = size(); return Math.min(W / lay.width, H / lay.height) * 0.96; }
    function limits() { const f = fitScale(); return [Math.min(f * 0.5, 0.05), 8]; }
    function zoomAt(factor, px, py) {
      const [lo, hi] = limits(), nk = Math.min(Math.max(k * factor, lo), hi);
      tx = px - (px - tx) * nk / k; ty = py - (py - ty) * nk / k; k = nk; apply();
    }
    function fit() {
      const [W, H] = size();
      k = Math.min(fitScale(), 2);
      tx = (W - lay.width * k) / 2; ty = (H - lay.height * k) / 2; apply();
    }
    // A deep network fitted whole is a thin line of dots: start at its top, readable, instead.
    function initialView() {
      if (fitScale() >= 0.3) return fit();
      const [W] = size();
      k = Math.min(1, Math.max(W / lay.width, 0.3));
      tx = (W - lay.width * k) / 2; ty = 0; apply();
    }
    function centerOn(i) {
      const [W, H] = size(), [x, y] = lay.nodes[i];
      k = Math.max(k, 0.9); tx = W / 2 - x * k; ty = H / 2 - y * k; apply();
    }

    function drawLabels() {
      if (k < LABEL_MIN_SCALE) { labels.textContent = ''; return; }
      const [W, H] = size(), x0 = -tx / k, y0 = -ty / k, x1 = x0 + W / k, y1 = y0 + H / k;
      const visible = [];
      for (let i = 0; i < nodes.length && visible.length <= MAX_LABELS; i++) {
        const [x, y, w, h] = lay.nodes[i];
        if (x + w / 2 >= x0 && x - w / 2 <= x1 && y + h / 2 >= y0 && y - h / 2 <= y1) visible.push(i);
      }
      if (visible.length > MAX_LABELS) { labels.textContent = ''; return; }
      const m = METRICS[metric];
      labels.innerHTML = visible.map(i => {
        const n = nodes[i], [x, y] = lay.nodes[i], op = n.op_type.length > 18 ? n.op_type.slice(0, 17) + '…' : n.op_type;
        return '<text x="' + x + '" y="' + (y - 3) + '" fill="' + inkFor(tValues[i]) + '"><tspan class="op">' + esc(op) +
          '</tspan><tspan x="' + x + '" dy="13">' + esc(m.text(n)) + '</tspan></text>';
      }).join('');
    }

    function setMetric(name, sharedDomain) {
      metric = name;
      const m = METRICS[name];
      domain = sharedDomain !== undefined ? sharedDomain : domainOf(nodes.map(m.value));
      for (let i = 0; i < nodes.length; i++) {
        tValues[i] = scaleT(m.value(nodes[i]), domain);
        rects[i].setAttribute('fill', fillFor(tValues[i]));
      }
      drawLabels();
    }

    function select(i, center) {
      if (selected >= 0) rects[selected].classList.remove('selected');
      selected = i;
      rects[i].classList.add('selected');
      selectedEdges.setAttribute('d', lay.edges.filter(e => e[0] === i || e[1] === i).map(e => edgePath(e[2])).join(''));
      details.innerHTML = detailsHtml(nodes[i], i);
      if (center) centerOn(i);
      if (hooks && hooks.onSelect) hooks.onSelect(i);
    }

    // pan (drag), zoom (wheel), click
    let drag = null;
    svg.addEventListener('pointerdown', ev => {
      if (ev.button !== 0) return;
      delete svg.dataset.dragged; // a drag that ended outside the graph left it set
      drag = { x: ev.clientX, y: ev.clientY, tx, ty, moved: false };
    });
    window.addEventListener('pointermove', ev => {
      if (!drag) return;
      const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!drag.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      drag.moved = true; svg.classList.add('dragging');
      tx = drag.tx + dx; ty = drag.ty + dy; apply();
    });
    window.addEventListener('pointerup', () => {
      if (drag && drag.moved) svg.dataset.dragged = '1';
      drag = null; svg.classList.remove('dragging');
    });
    svg.addEventListener('click', ev => {
      if (svg.dataset.dragged) { delete svg.dataset.dragged; return; }
      const target = ev.target;
      if (target.classList && target.classList.contains('node')) select(Number(target.dataset.index), false);
    });
    svg.addEventListener('wheel', ev => {
      ev.preventDefault();
      const r = svg.getBoundingClientRect();
      zoomAt(Math.exp(-ev.deltaY * 0.0015), ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    controls.addEventListener('click', ev => {
      const action = ev.target.dataset && ev.target.dataset.action, [W, H] = size();
      if (action === 'fit') fit();
      else if (action === 'zoom-in') zoomAt(1.4, W / 2, H / 2);
      else if (action === 'zoom-out') zoomAt(1 / 1.4, W / 2, H / 2);
    });
    svg.addEventListener('mouseover', ev => {
      const t = ev.target;
      if (!t.classList || !t.classList.contains('node')) return;
      const n = nodes[Number(t.dataset.index)];
      tooltip.innerHTML = '<b>' + esc(n.op_type) + '</b> ' + esc(n.name) + '<br>' + esc(METRICS[metric].label) + ': ' +
        esc(METRICS[metric].text(n)) + (n.module ? '<br>module ' + esc(n.module) : '');
      tooltip.hidden = false;
    });
    svg.addEventListener('mousemove', ev => {
      if (tooltip.hidden) return;
      const r = viewEl.getBoundingClientRect();
      tooltip.style.left = Math.min(ev.clientX - r.left + 14, r.width - 200) + 'px';
      tooltip.style.top = (ev.clientY - r.top + 14) + 'px';
    });
    svg.addEventListener('mouseout', ev => { if (ev.target.classList && ev.target.classList.contains('node')) tooltip.hidden = true; });

    initialView();
    return { panel, nodes, setMetric, select, fit, centerOn, values: name => nodes.map(METRICS[name].value) };
  }

  // ---------- charts ----------
  const CW = 660, CH = 220, PAD = { l: 62, r: 14, t: 12, b: 30 };

  function ticks(max, n) {
    if (!(max > 0)) return [0];
    const step0 = max / n, mag = 10 ** Math.floor(Math.log10(step0)), norm = step0 / mag;
    const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
    const out = [];
    for (let v = 0; v <= max * 1.0001; v += step) out.push(v);
    return out;
  }

  function chartFrame(host, title, yMax, yFormat, xMax, xLabel) {
    const box = div('chart', host);
    div(null, box, '<h3>' + esc(title) + '</h3>');
    const svg = svgEl('svg', { viewBox: '0 0 ' + CW + ' ' + CH, preserveAspectRatio: 'xMidYMid meet' }, box);
    const readout = div('readout', box);
    const pw = CW - PAD.l - PAD.r, ph = CH - PAD.t - PAD.b;
    const sx = x => PAD.l + (xMax > 0 ? x / xMax : 0) * pw, sy = y => PAD.t + ph - (yMax > 0 ? y / yMax : 0) * ph;
    let axis = '<g class="axis">';
    for (const v of ticks(yMax, 4)) {
      axis += '<line x1="' + PAD.l + '" x2="' + (CW - PAD.r) + '" y1="' + sy(v) + '" y2="' + sy(v) + '"></line>' +
        '<text x="' + (PAD.l - 6) + '" y="' + (sy(v) + 3) + '" text-anchor="end">' + esc(yFormat(v)) + '</text>';
    }
    axis += '<text x="' + (PAD.l + pw / 2) + '" y="' + (CH - 6) + '" text-anchor="middle">' + esc(xLabel) + '</text>' +
      '<text x="' + PAD.l + '" y="' + (CH - 16) + '">0</text><text x="' + (CW - PAD.r) + '" y="' + (CH - 16) +
      '" text-anchor="end">' + xMax + '</text></g>';
    svg.innerHTML = axis;
    return { box, svg, readout, sx, sy, pw, ph };
  }

  function pointerX(svg, ev) { const r = svg.getBoundingClientRect(); return (ev.clientX - r.left) * CW / r.width; }

  function barChart(host, title, nodes, value, format, onPick) {
    const items = [];
    nodes.forEach((n, i) => { const v = value(n); if (v > 0) items.push(i); });
    if (!items.length) { div('chart', host, '<h3>' + esc(title) + '</h3><p class="empty">no node has any</p>'); return; }
    const yMax = Math.max(...items.map(i => value(nodes[i])));
    const c = chartFrame(host, title, yMax, format, items.length, 'layers with any, in execution order (' + items.length + ')');
    const bw = c.pw / items.length, gap = bw > 3 ? bw * 0.15 : 0;
    let d = '';
    items.forEach((i, j) => {
      const x = PAD.l + j * bw, y = c.sy(value(nodes[i]));
      d += 'M' + (x + gap / 2).toFixed(2) + ',' + (PAD.t + c.ph) + 'V' + y.toFixed(2) + 'h' + Math.max(bw - gap, 0.3).toFixed(2) + 'V' + (PAD.t + c.ph) + 'z';
    });
    svgEl('path', { d, fill: '#4c78a8' }, c.svg);
    const hi = svgEl('rect', { fill: '#f58518', width: Math.max(bw - gap, 0.6), visibility: 'hidden' }, c.svg);
    const at = ev => Math.floor((pointerX(c.svg, ev) - PAD.l) / bw);
    c.svg.addEventListener('mousemove', ev => {
      const j = at(ev);
      if (j < 0 || j >= items.length) { hi.setAttribute('visibility', 'hidden'); return; }
      const i = items[j], y = c.sy(value(nodes[i]));
      hi.setAttribute('x', PAD.l + j * bw + gap / 2); hi.setAttribute('y', y); hi.setAttribute('height', PAD.t + c.ph - y);
      hi.setAttribute('visibility', 'visible');
      c.readout.textContent = '#' + i + ' ' + nodes[i].name + ' (' + nodes[i].op_type + '): ' + exact(value(nodes[i])) + ' = ' + format(value(nodes[i]));
    });
    c.svg.addEventListener('click', ev => { const j = at(ev); if (j >= 0 && j < items.length) onPick(items[j]); });
  }

  function livenessChart(host, report, onPick) {
    const nodes = report.nodes, t = report.totals;
    const peakIndex = nodes.findIndex(n => n.name === t.peak_memory_node);
    const yMax = Math.max(t.peak_memory_bytes, ...nodes.map(n => n.live_bytes), 1);
    const c = chartFrame(host, 'Memory liveness: bytes live after each node', yMax, nbytes, Math.max(nodes.length - 1, 1), 'execution order');
    svgEl('path', { d: nodes.map((n, i) => (i ? 'L' : 'M') + c.sx(i).toFixed(2) + ',' + c.sy(n.live_bytes).toFixed(2)).join(''),
      fill: 'none', stroke: '#4c78a8', 'stroke-width': 1.5, class: 'liveness' }, c.svg);
    if (peakIndex >= 0) {
      const px = c.sx(peakIndex), py = c.sy(t.peak_memory_bytes);
      svgEl('line', { x1: px, x2: px, y1: PAD.t, y2: PAD.t + c.ph, stroke: '#e45756', 'stroke-dasharray': '4 3' }, c.svg);
      svgEl('circle', { cx: px, cy: py, r: 4.5, fill: '#e45756', class: 'peak', 'data-node': t.peak_memory_node }, c.svg);
      const label = svgEl('text', { x: px + (px > CW * 0.6 ? -8 : 8), y: Math.max(py - 6, PAD.t + 10), class: 'tick',
        'text-anchor': px > CW * 0.6 ? 'end' : 'start', fill: '#e45756' }, c.svg);
      label.textContent = 'peak ' + nbytes(t.peak_memory_bytes) + ' while ' + t.peak_memory_node + ' runs';
    }
    const at = ev => Math.round((pointerX(c.svg, ev) - PAD.l) / c.pw * Math.max(nodes.length - 1, 1));
    c.svg.addEventListener('mousemove', ev => {
      const i = at(ev);
      if (i < 0 || i >= nodes.length) return;
      c.readout.textContent = '#' + i + ' ' + nodes[i].name + ': ' + nbytes(nodes[i].live_bytes) + ' live after it' +
        (i === peakIndex ? '; peak while it runs ' + nbytes(t.peak_memory_bytes) : '');
    });
    c.svg.addEventListener('click', ev => { const i = at(ev); if (i >= 0 && i < nodes.length) onPick(i); });
  }

  function receptiveFieldChart(host, report, onPick) {
    const nodes = report.nodes, items = [];
    nodes.forEach((n, i) => { if (n.receptive_field && rfSize(n.receptive_field) > 0) items.push(i); });
    const title = 'Receptive field growth (largest side, pixels) over execution order';
    if (!items.length) { div('chart', host, '<h3>' + esc(title) + '</h3><p class="empty">no node has a receptive field</p>'); return; }
    const yMax = Math.max(...items.map(i => rfSize(nodes[i].receptive_field)));
    const c = chartFrame(host, title, yMax, v => String(Math.round(v)), Math.max(nodes.length - 1, 1), 'execution order');
    svgEl('path', { d: items.map((i, j) => (j ? 'L' : 'M') + c.sx(i).toFixed(2) + ',' + c.sy(rfSize(nodes[i].receptive_field)).toFixed(2)).join(''),
      fill: 'none', stroke: '#54a24b', 'stroke-width': 1.2 }, c.svg);
    if (items.length <= 1500) {
      let local = '', global = '';
      for (const i of items) {
        const dot = 'M' + (c.sx(i) - 2).toFixed(2) + ',' + (c.sy(rfSize(nodes[i].receptive_field)) - 2).toFixed(2) + 'h4v4h-4z';
        if (nodes[i].receptive_field.global) global += dot; else local += dot;
      }
      svgEl('path', { d: local, fill: '#54a24b' }, c.svg);
      svgEl('path', { d: global, fill: '#b279a2' }, c.svg);
    }
    const at = ev => {
      const x = pointerX(c.svg, ev);
      let best = -1, bestDist = Infinity;
      for (const i of items) { const dd = Math.abs(c.sx(i) - x); if (dd < bestDist) { bestDist = dd; best = i; } }
      return best;
    };
    c.svg.addEventListener('mousemove', ev => {
      const i = at(ev);
      if (i >= 0) c.readout.textContent = '#' + i + ' ' + nodes[i].name + ': ' + rfText(nodes[i].receptive_field);
    });
    c.svg.addEventListener('click', ev => { const i = at(ev); if (i >= 0) onPick(i); });
  }

  function createCharts(host, panel, onPick) {
    const grid = div('charts', host), nodes = panel.report.nodes;
    barChart(grid, 'MACs per layer', nodes, n => n.macs, count, onPick);
    barChart(grid, 'Parameters per layer', nodes, n => n.params, count, onPick);
    livenessChart(grid, panel.report, onPick);
    receptiveFieldChart(grid, panel.report, onPick);
  }

  // ---------- node table ----------
  const PAGE_ROWS = 300;
  const COLUMNS = [
    { key: 'index', label: '#', num: true, value: (n, i) => i, text: (n, i) => String(i) },
    { key: 'name', label: 'name', value: n => n.name, text: n => n.name, cls: 'name' },
    { key: 'op_type', label: 'op', value: n => n.op_type, text: n => n.op_type },
    { key: 'module', label: 'module', value: n => n.module || '', text: n => n.module || '' },
    { key: 'output', label: 'output', value: n => n.outputs.map(o => shape(o.shape)).join(', '), text: n => n.outputs.map(o => shape(o.shape)).join(', ') },
    { key: 'params', label: 'params', num: true, value: n => n.params, text: n => exact(n.params) },
    { key: 'macs', label: 'MACs', num: true, value: n => n.macs, text: n => exact(n.macs) },
    { key: 'flops', label: 'FLOPs', num: true, value: n => n.flops, text: n => exact(n.flops) },
    { key: 'weight_bytes', label: 'weights', num: true, value: n => n.weight_bytes, text: n => nbytes(n.weight_bytes) },
    { key: 'activation_bytes', label: 'activations', num: true, value: n => n.activation_bytes, text: n => nbytes(n.activation_bytes) },
    { key: 'live_bytes', label: 'live after', num: true, value: n => n.live_bytes, text: n => nbytes(n.live_bytes) },
    { key: 'receptive_field', label: 'RF', num: true, value: n => rfSize(n.receptive_field), text: n => rfText(n.receptive_field) },
  ];

  function createTable(host, panel, onPick) {
    const nodes = panel.report.nodes;
    const tools = div('table-tools', host,
      '<input type="search" class="filter" placeholder="filter by name, op or module" aria-label="filter nodes">' +
      '<span class="count"></span><button type="button" class="more">show more</button>');
    const scroll = div('table-scroll', host);
    const table = document.createElement('table');
    table.className = 'nodes';
    table.innerHTML = '<thead><tr>' + COLUMNS.map(c => '<th data-key="' + c.key + '"' + (c.num ? ' class="num"' : '') + '>' + c.label + '</th>').join('') +
      '</tr></thead><tbody></tbody>';
    scroll.appendChild(table);
    const body = table.tBodies[0], filter = tools.querySelector('.filter'), countEl = tools.querySelector('.count'), more = tools.querySelector('.more');
    const haystack = nodes.map(n => (n.name + '\n' + n.op_type + '\n' + (n.module || '')).toLowerCase());
    let rows = nodes.map((n, i) => i), shown = PAGE_ROWS, sortKey = null, sortDir = 1, selected = -1;

    function refresh() {
      const q = filter.value.trim().toLowerCase();
      rows = nodes.map((n, i) => i).filter(i => !q || haystack[i].includes(q));
      if (sortKey) {
        const col = COLUMNS.find(c => c.key === sortKey);
        rows.sort((a, b) => {
          const x = col.value(nodes[a], a), y = col.value(nodes[b], b);
          return (col.num ? x - y : (x < y ? -1 : x > y ? 1 : 0)) * sortDir || a - b;
        });
      }
      draw();
    }
    function draw() {
      const slice = rows.slice(0, shown);
      body.innerHTML = slice.map(i => '<tr data-index="' + i + '"' + (i === selected ? ' class="selected"' : '') + '>' +
        COLUMNS.map(c => '<td' + (c.num ? ' class="num"' : c.cls ? ' class="' + c.cls + '"' : '') + '>' + esc(c.text(nodes[i], i)) + '</td>').join('') + '</tr>').join('');
      countEl.textContent = 'showing ' + slice.length + ' of ' + rows.length + (rows.length !== nodes.length ? ' matching (' + nodes.length + ' nodes)' : ' nodes');
      more.hidden = slice.length >= rows.length;
    }
    filter.addEventListener('input', () => { shown = PAGE_ROWS; refresh(); });
    more.addEventListener('click', () => { shown += PAGE_ROWS * 3; draw(); });
    table.tHead.addEventListener('click', ev => {
      const th = ev.target.closest('th');
      if (!th) return;
      sortDir = sortKey === th.dataset.key ? -sortDir : (COLUMNS.find(c => c.key === th.dataset.key).num ? -1 : 1);
      sortKey = th.dataset.key;
      table.tHead.querySelectorAll('th').forEach(h => h.removeAttribute('data-dir'));
      th.dataset.dir = sortDir > 0 ? 'asc' : 'desc';
      refresh();
    });
    body.addEventListener('click', ev => { const tr = ev.target.closest('tr'); if (tr) onPick(Number(tr.dataset.index)); });
    refresh();
    return {
      markSelected(i) {
        selected = i;
        body.querySelectorAll('tr.selected').forEach(tr => tr.classList.remove('selected'));
        const tr = body.querySelector('tr[data-index="' + i + '"]');
        if (tr) tr.classList.add('selected');
      },
    };
  }

  // ---------- latency distributions (compare) ----------
  function latencyChart(host, latency) {
    const sides = ['a', 'b'].map(k => latency[k]);
    const all = [].concat(...sides.map(s => s.samples_s), ...sides.map(s => s.block_medians_s));
    const lo = Math.min(...all), hi = Math.max(...sides.map(s => s.upper_s));
    const box = div('chart', host, '<h3>Latency distributions (ms): every timed iteration (light), block medians (dark), box of the block medians</h3>');
    const W = 900, H = 60 + sides.length * 70, svg = svgEl('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'latency' }, box);
    const left = 180, right = W - 20, sx = v => left + (Math.min(v, hi) - lo) / ((hi - lo) || 1) * (right - left);
    let html = '<g class="axis">';
    for (let j = 0; j <= 5; j++) {
      const v = lo + (hi - lo) * j / 5, x = sx(v);
      html += '<line x1="' + x + '" x2="' + x + '" y1="10" y2="' + (H - 30) + '"></line><text x="' + x + '" y="' + (H - 14) + '" text-anchor="middle">' + (v * 1e3).toFixed(3) + '</text>';
    }
    html += '</g>';
    sides.forEach((s, r) => {
      const cy = 40 + r * 70, colour = r ? '#f58518' : '#4c78a8';
      let light = '', dark = '';
      s.samples_s.forEach((v, j) => { light += 'M' + sx(v).toFixed(1) + ',' + (cy - 18 + ((j * 7919) % 37)).toFixed(1) + 'h1.2v1.2h-1.2z'; });
      s.block_medians_s.forEach((v, j) => { dark += 'M' + (sx(v) - 1.5).toFixed(1) + ',' + (cy - 8 + ((j * 31) % 17)).toFixed(1) + 'h3v3h-3z'; });
      const [q1, q2, q3] = s.quartiles_s;
      const label = s.label.length > 26 ? s.label.slice(0, 25) + '…' : s.label;
      html += '<text x="10" y="' + (cy + 4) + '" class="tick"><title>' + esc(s.label) + '</title>' + esc(label) + '</text>' +
        '<path d="' + light + '" fill="' + colour + '" fill-opacity="0.25"></path>' +
        '<path d="' + dark + '" fill="' + colour + '"></path>' +
        '<rect x="' + sx(q1) + '" y="' + (cy - 22) + '" width="' + Math.max(sx(q3) - sx(q1), 1) + '" height="44" fill="none" stroke="#1f2328"></rect>' +
        '<line x1="' + sx(q2) + '" x2="' + sx(q2) + '" y1="' + (cy - 24) + '" y2="' + (cy + 24) + '" stroke="#1f2328" stroke-width="2.5"></line>';
    });
    svg.innerHTML = html;
    div('readout', box, esc(sides.map(s => s.label + ': median ' + ms(s.median_s) + ' over ' + s.iterations + ' iterations' +
      (s.samples_shown < s.iterations ? ' (every ' + Math.ceil(s.iterations / s.samples_shown) + 'th shown)' : '')).join('; ')));
  }

  // ---------- page ----------
  const graphs = [], tables = [];
  data.panels.forEach((panel, p) => {
    const graphHost = document.querySelector('.graph-host[data-panel="' + p + '"]');
    const graph = graphHost ? createGraph(graphHost, panel, { onSelect: i => tables[p] && tables[p].markSelected(i) }) : null;
    graphs[p] = graph;
    const pick = i => { if (graph) graph.select(i, true); };
    const chartsHost = document.querySelector('.charts-host[data-panel="' + p + '"]');
    if (chartsHost) createCharts(chartsHost, panel, pick);
    const tableHost = document.querySelector('.table-host[data-panel="' + p + '"]');
    if (tableHost) tables[p] = createTable(tableHost, panel, pick);
  });

  const select = document.getElementById('metric'), legend = document.getElementById('legend');
  function setMetric(name) {
    const live = graphs.filter(Boolean);
    // One scale for every graph on the page, so before and after colours compare.
    const domain = domainOf([].concat(...live.map(g => g.values(name))));
    live.forEach(g => g.setMetric(name, domain));
    if (legend) {
      const f = METRICS[name].format;
      legend.innerHTML = '<span class="zero"></span> 0 <span>' + (domain ? esc(f(domain[0])) : '–') + '</span><span class="ramp" style="background:linear-gradient(90deg,' +
        [0, 0.2, 0.4, 0.6, 0.8, 1].map(rampAt).join(',') + ')"></span><span>' + (domain ? esc(f(domain[1])) : '–') + '</span><span>(log scale)</span>';
    }
    if (select) select.value = name;
  }
  if (select) select.addEventListener('change', () => setMetric(select.value));
  setMetric(select ? select.value : 'macs');

  const latencyHost = document.querySelector('.latency-host');
  if (latencyHost && data.latency) latencyChart(latencyHost, data.latency);

  window.analyzerPage = { data, graphs, setMetric };
  document.body.dataset.readyMs = String(Math.round(performance.now()));
  document.body.dataset.ready = '1';
})();
