// Builds the report from the JSON in #report-data (see HtmlReport). Text goes in through text nodes only.
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  var plans = data.plans;

  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function fmt(v, digits) {
    if (v === null || v === undefined) return '–';
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString('en-US');
    return Number(v).toFixed(digits === undefined ? 3 : digits);
  }
  function fmtInterval(i) {
    if (!i) return '–';
    return fmt(i.estimate) + ' [' + fmt(i.lo) + ', ' + fmt(i.hi) + ']';
  }
  function table(head, rows, rowClass) {
    var wrap = el('div', null, 'scroll');
    var t = el('table');
    wrap.appendChild(t);
    var tr = el('tr');
    head.forEach(function (h, j) { tr.appendChild(el('th', h, j === 0 ? 'text' : null)); });
    t.appendChild(tr);
    rows.forEach(function (r, i) {
      var row = el('tr');
      if (rowClass) row.className = rowClass(i);
      r.forEach(function (c, j) {
        var cell = c !== null && typeof c === 'object';
        row.appendChild(el('td', cell ? c.text : c, j === 0 ? 'text' : (cell ? c.cls : null)));
      });
      t.appendChild(row);
    });
    return wrap;
  }

  var ctx = document.getElementById('context');
  Object.keys(data.context).forEach(function (k) {
    ctx.appendChild(el('div', k + ': ' + data.context[k]));
  });

  var onFront = {};
  data.axes.forEach(function (axis) {
    axis.pareto.forEach(function (i) { onFront[i] = true; });
  });

  var rendered = 0;
  data.axes.forEach(function (axis) {
    var node = document.getElementById('chart-' + axis.key);
    var chart = echarts.init(node, null, { renderer: 'canvas' });
    var points = [];
    var bars = [];
    plans.forEach(function (p, i) {
      var x = p.cost[axis.key];
      if (x === null) return;
      points.push({ value: [x, p.accuracy], name: p.label, planIndex: i });
      if (p.loss) {
        bars.push([x, p.accuracy - (p.loss.hi - p.loss.estimate), p.accuracy + (p.loss.estimate - p.loss.lo)]);
      }
    });
    var front = axis.pareto.map(function (i) { return [plans[i].cost[axis.key], plans[i].accuracy, plans[i].label]; });
    // registered before setOption: the first render can finish inside setOption
    chart.on('finished', function once() {
      chart.off('finished', once);
      rendered += 1;
      document.body.setAttribute('data-charts-rendered', String(rendered));
    });
    chart.setOption({
      animation: false,
      title: { text: 'accuracy vs ' + axis.title, left: 8, top: 6, textStyle: { fontSize: 14 } },
      grid: { left: 64, right: 24, top: 64, bottom: 46 },
      tooltip: {
        trigger: 'item',
        formatter: function (it) {
          var p = plans[it.data.planIndex !== undefined ? it.data.planIndex : axis.pareto[it.dataIndex]];
          if (!p) return '';
          return echarts.format.encodeHTML(p.label + ' (' + p.hash.substring(0, 12) + ')') + '<br>accuracy ' +
            fmt(p.accuracy) + ', loss ' + fmtInterval(p.loss) + '<br>' + axis.title + ' ' + fmt(p.cost[axis.key]);
        }
      },
      legend: { data: ['plans', 'Pareto front', '95 % interval'], left: 8, top: 26, textStyle: { fontSize: 11 } },
      xAxis: { type: 'value', name: axis.title, nameLocation: 'middle', nameGap: 28, scale: true },
      yAxis: { type: 'value', scale: true },
      series: [
        { name: 'plans', type: 'scatter', symbolSize: 9, data: points, z: 3 },
        { name: 'Pareto front', type: 'line', data: front, symbol: 'circle', symbolSize: 12, z: 4,
          lineStyle: { width: 2.5 }, itemStyle: { color: '#d94f2b' }, tooltip: { show: false } },
        { name: '95 % interval', type: 'custom', data: bars, z: 2, tooltip: { show: false },
          renderItem: function (params, api) {
            var lo = api.coord([api.value(0), api.value(1)]);
            var hi = api.coord([api.value(0), api.value(2)]);
            var w = 4;
            var style = { stroke: '#7a8699', lineWidth: 1.2 };
            return { type: 'group', children: [
              { type: 'line', shape: { x1: lo[0], y1: lo[1], x2: hi[0], y2: hi[1] }, style: style },
              { type: 'line', shape: { x1: lo[0] - w, y1: lo[1], x2: lo[0] + w, y2: lo[1] }, style: style },
              { type: 'line', shape: { x1: hi[0] - w, y1: hi[1], x2: hi[0] + w, y2: hi[1] }, style: style }
            ] };
          } }
      ]
    });
    window.addEventListener('resize', function () { chart.resize(); });
  });

  var kinds = {};
  plans.forEach(function (p) { Object.keys(p.accuracy_by_kind).forEach(function (k) { kinds[k] = true; }); });
  kinds = Object.keys(kinds).sort();
  document.getElementById('kinds').appendChild(table(
    ['plan', 'overall', 'loss vs empty [95 %]'].concat(kinds.map(function (k) { return k; }))
      .concat(kinds.map(function (k) { return 'loss ' + k; })),
    plans.map(function (p) {
      return [p.label, fmt(p.accuracy), fmtInterval(p.loss)]
        .concat(kinds.map(function (k) { return fmt(p.accuracy_by_kind[k]); }))
        .concat(kinds.map(function (k) { return fmtInterval(p.loss_by_kind[k]); }));
    }),
    function (i) { return onFront[i] ? 'front' : ''; }));

  var metricNames = {};
  plans.forEach(function (p) { Object.keys(p.metrics).forEach(function (k) { metricNames[k] = true; }); });
  metricNames = Object.keys(metricNames).sort();
  document.getElementById('metrics').appendChild(table(
    ['plan', 'images', 'questions'].concat(data.axes.map(function (a) { return a.title; })).concat(metricNames),
    plans.map(function (p) {
      return [p.label, p.images, p.questions]
        .concat(data.axes.map(function (a) { return fmt(p.cost[a.key]); }))
        .concat(metricNames.map(function (k) { return fmt(p.metrics[k]); }));
    })));

  document.getElementById('plans').appendChild(table(
    ['plan', 'hash', 'canonical plan'],
    plans.map(function (p) { return [p.label, { text: p.hash, cls: 'text' }, { text: p.plan, cls: 'plan' }]; })));
})();
