// Charts of the statistics page, drawn with the ECharts copy the app serves itself (no CDN).
(function () {
  "use strict";
  var source = document.getElementById("stats-data");
  if (!source || typeof echarts === "undefined") { return; }  // the tables below say it all without charts
  var data = JSON.parse(source.textContent);
  function draw(id, categories, series, type) {
    var node = document.getElementById(id);
    if (!node) { return; }
    var chart = echarts.init(node, null, { renderer: "svg" });
    chart.setOption({
      animation: false,
      tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 40, right: 16, top: 36, bottom: 48 },
      xAxis: { type: "category", data: categories, axisLabel: { rotate: categories.length > 6 ? 30 : 0 } },
      yAxis: { type: "value", minInterval: 1 },
      series: series.map(function (s) { return { name: s.name, type: type, data: s.data }; })
    });
    window.addEventListener("resize", function () { chart.resize(); });
    node.setAttribute("data-drawn", "1");
  }
  draw("trend", data.months, [{ name: "发布需求", data: data.month_needs }, { name: "形成项目", data: data.month_projects }], "line");
  draw("streets", data.streets, [{ name: "发布需求", data: data.street_needs }, { name: "形成项目", data: data.street_projects },
                                 { name: "超期需求", data: data.street_overdue }], "bar");
})();
