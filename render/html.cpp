// HTML, SVG and embedded PNG for reports, written by hand (no template or plotting dependency).
// Every string that comes from data (paths, names) goes through html_escape.
#include "render/html.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace ks {

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string base64(const std::string& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < bytes.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(bytes[i]) << 16;
    if (i + 1 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    if (i + 2 < bytes.size()) chunk |= static_cast<uint8_t>(bytes[i + 2]);
    out += table[(chunk >> 18) & 63];
    out += table[(chunk >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(chunk >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[chunk & 63] : '=';
  }
  return out;
}

std::string img(const Picture& picture, const std::string& alt) {
  return "<img alt=\"" + html_escape(alt) + "\" src=\"data:image/png;base64," + base64(png_bytes(picture)) + "\">";
}

std::string number(double value, const char* pattern) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string chart(const std::vector<Series>& series, const std::string& x_label, const std::string& y_label, bool log_y, bool diagonal) {
  const double W = 420, H = 300, left = 60, bottom = 40, top = 15, right = 130;
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  auto ty = [&](double y) { return log_y ? std::log10(std::max(y, 1e-300)) : y; };
  for (const Series& s : series)
    for (size_t k = 0; k < s.x.size(); ++k) {
      x0 = std::min(x0, s.x[k]);
      x1 = std::max(x1, s.x[k]);
      y0 = std::min(y0, ty(s.y[k]));
      y1 = std::max(y1, ty(s.y[k]));
    }
  if (diagonal) x0 = y0 = std::min(x0, y0), x1 = y1 = std::max(x1, y1);
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  auto py = [&](double y) { return H - bottom - (ty(y) - y0) / (y1 - y0) * (H - bottom - top); };
  auto py_raw = [&](double t) { return H - bottom - (t - y0) / (y1 - y0) * (H - bottom - top); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"11\">";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right << "\" height=\"" << H - bottom - top << "\" fill=\"none\" stroke=\"#888\"/>";
  auto y_tick = [&](double t) { return log_y ? "1e" + number(t, "%.0f") : number(t); };
  svg << "<text x=\"" << left - 4 << "\" y=\"" << py_raw(y0) << "\" text-anchor=\"end\">" << y_tick(y0) << "</text>";
  svg << "<text x=\"" << left - 4 << "\" y=\"" << py_raw(y1) + 8 << "\" text-anchor=\"end\">" << y_tick(y1) << "</text>";
  svg << "<text x=\"" << left << "\" y=\"" << H - bottom + 14 << "\">" << number(x0) << "</text>";
  svg << "<text x=\"" << W - right << "\" y=\"" << H - bottom + 14 << "\" text-anchor=\"end\">" << number(x1) << "</text>";
  svg << "<text x=\"" << (left + W - right) / 2 << "\" y=\"" << H - 8 << "\" text-anchor=\"middle\">" << x_label << "</text>";
  svg << "<text transform=\"translate(14," << (top + H - bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\">" << y_label << "</text>";
  if (diagonal) svg << "<line x1=\"" << px(x0) << "\" y1=\"" << py(x0) << "\" x2=\"" << px(x1) << "\" y2=\"" << py(x1) << "\" stroke=\"#bbb\" stroke-dasharray=\"4\"/>";
  int legend = 0;
  for (const Series& s : series) {
    if (s.line) {
      svg << "<polyline fill=\"none\" stroke=\"" << s.colour << "\" stroke-width=\"2\" points=\"";
      for (size_t k = 0; k < s.x.size(); ++k) svg << px(s.x[k]) << "," << py(s.y[k]) << " ";
      svg << "\"/>";
    }
    for (size_t k = 0; k < s.x.size(); ++k) svg << "<circle cx=\"" << px(s.x[k]) << "\" cy=\"" << py(s.y[k]) << "\" r=\"2.5\" fill=\"" << s.colour << "\" fill-opacity=\"0.7\"/>";
    svg << "<rect x=\"" << W - right + 10 << "\" y=\"" << top + 14 * legend << "\" width=\"10\" height=\"10\" fill=\"" << s.colour << "\"/>";
    svg << "<text x=\"" << W - right + 24 << "\" y=\"" << top + 9 + 14 * legend++ << "\">" << s.name << "</text>";
  }
  svg << "</svg>";
  return svg.str();
}

std::string bar_chart(const std::vector<std::string>& labels, const std::vector<Bars>& series, const std::string& value_label, bool log_x) {
  const double left = 110, right = 20, top = 10, bar = 14, group_gap = 10, legend = 18;
  const double W = 520, plot = W - left - right;
  const double H = top + labels.size() * (series.size() * bar + group_gap) + 36 + legend * (series.size() > 1);
  auto tx = [&](double v) { return log_x ? std::log10(std::max(v, 1e-300)) : v; };
  double low = log_x ? 1e300 : 0, high = -1e300;
  for (const Bars& s : series)
    for (double v : s.values) low = log_x ? std::min(low, tx(v)) : low, high = std::max(high, tx(v));
  if (log_x) low = std::floor(low), high = std::ceil(high);
  if (high <= low) high = low + 1;
  auto px = [&](double v) { return left + (tx(v) - low) / (high - low) * plot; };
  auto tick = [&](double t) { return log_x ? "1e" + number(t, "%.0f") : number(t); };
  std::ostringstream svg;
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" font-family=\"sans-serif\" font-size=\"11\">";
  double y = top;
  for (size_t l = 0; l < labels.size(); ++l) {
    svg << "<text x=\"" << left - 6 << "\" y=\"" << y + series.size() * bar / 2 + 4 << "\" text-anchor=\"end\">" << labels[l] << "</text>";
    for (const Bars& s : series) {
      const double v = s.values[l];
      svg << "<rect x=\"" << left << "\" y=\"" << y + 1 << "\" width=\"" << std::max(1.0, px(v) - left) << "\" height=\"" << bar - 2 << "\" fill=\"" << s.colour << "\"/>";
      // The value sits after the bar, or inside it in white where the bar reaches the right edge.
      const bool inside = px(v) > W - right - 50;
      svg << "<text x=\"" << (inside ? px(v) - 4 : px(v) + 4) << "\" y=\"" << y + bar - 3 << "\" font-size=\"10\"" << (inside ? " text-anchor=\"end\" fill=\"#fff\"" : "")
          << ">" << number(v, log_x ? "%.1e" : "%.3f") << "</text>";
      y += bar;
    }
    y += group_gap;
  }
  svg << "<line x1=\"" << left << "\" y1=\"" << top << "\" x2=\"" << left << "\" y2=\"" << y << "\" stroke=\"#888\"/>";
  svg << "<text x=\"" << left << "\" y=\"" << y + 12 << "\">" << tick(low) << "</text><text x=\"" << W - right << "\" y=\"" << y + 12
      << "\" text-anchor=\"end\">" << tick(high) << "</text><text x=\"" << left + plot / 2 << "\" y=\"" << y + 26 << "\" text-anchor=\"middle\">" << value_label << "</text>";
  if (series.size() > 1)
    for (size_t k = 0; k < series.size(); ++k)
      svg << "<rect x=\"" << left + 90 * k << "\" y=\"" << y + 34 << "\" width=\"10\" height=\"10\" fill=\"" << series[k].colour << "\"/><text x=\"" << left + 90 * k + 14
          << "\" y=\"" << y + 43 << "\">" << series[k].name << "</text>";
  svg << "</svg>";
  return svg.str();
}

std::string html_table(const std::vector<std::vector<std::string>>& rows) {
  std::string html = "<table>";
  for (size_t r = 0; r < rows.size(); ++r) {
    html += "<tr>";
    for (const std::string& cell : rows[r]) html += (r == 0 ? "<th>" : "<td>") + html_escape(cell) + (r == 0 ? "</th>" : "</td>");
    html += "</tr>";
  }
  return html + "</table>";
}

std::string report_page(const std::string& title, const std::string& body) {
  std::ostringstream html;
  html << "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>" << html_escape(title) << "</title><style>"
       << "body{font-family:sans-serif;max-width:1000px;margin:2em auto;line-height:1.45;color:#222}table{border-collapse:collapse;margin:1em 0}"
       << "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}img{image-rendering:pixelated;margin:2px;vertical-align:middle}"
       << "figure{display:inline-block;margin:4px 10px;text-align:center;font-size:12px}.small{color:#666;font-size:13px}</style></head><body>"
       << "<h1>" << html_escape(title) << "</h1>" << body
       << "<p class=\"small\">Written by kernelscope. Numbers are float64; everything above can be recomputed from the run directories.</p></body></html>\n";
  return html.str();
}

}  // namespace ks
