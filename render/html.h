// HTML for reports: escaped text, embedded PNG pictures, small hand-written SVG charts (points, lines, horizontal bars),
// tables and a self-contained page. Rendering only: it computes nothing about networks or kernels.
// Charts are small hand-written SVG: four chart kinds did not justify a plotting dependency.
#pragma once

#include <string>
#include <vector>

#include "render/picture.h"

namespace ks {

// Text for HTML: & < > " ' escaped, so a path or a class name can never become markup.
std::string html_escape(const std::string& text);
std::string base64(const std::string& bytes);
// An <img> with the picture embedded as a PNG data URL.
std::string img(const Picture& picture, const std::string& alt);
std::string number(double value, const char* pattern = "%.3g");

// A small SVG chart: axes, ticks at the ends, series of points or lines.
struct Series {
  std::string name, colour;
  std::vector<double> x, y;
  bool line = false;
};
std::string chart(const std::vector<Series>& series, const std::string& x_label, const std::string& y_label, bool log_y, bool diagonal);

// Horizontal bars, one group per label and one bar per series in it; on a log scale the bars start at the smallest decade.
struct Bars {
  std::string name, colour;
  std::vector<double> values;  // one per label
};
std::string bar_chart(const std::vector<std::string>& labels, const std::vector<Bars>& series, const std::string& value_label, bool log_x);

// A table: the first row is the header; cells are escaped.
std::string html_table(const std::vector<std::vector<std::string>>& rows);
// A whole self-contained HTML page.
std::string report_page(const std::string& title, const std::string& body);

}  // namespace ks
