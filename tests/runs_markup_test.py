"""Tests of tf_topk.runs.markup: report.html's HTML building blocks."""

import doctest

import tensorflow as tf

from tf_topk.runs import markup


class MarkupTest(tf.test.TestCase):
    def test_table_escapes_and_right_aligns_numbers(self):
        self.assertEqual(
            markup.table(["k", "<name>"], [(1, "a & b"), (2.5, None)]),
            "<table><tr><th>k</th><th>&lt;name&gt;</th></tr>"
            '<tr><td class="num">1</td><td>a &amp; b</td></tr>'
            '<tr><td class="num">2.5</td><td>None</td></tr></table>',
        )

    def test_heading_anchor(self):
        self.assertEqual(
            markup.heading("Top-k accuracy, k = 1..10"),
            '<h2 id="top-k-accuracy-k-1-10">Top-k accuracy, k = 1..10</h2>',
        )

    def test_mapping_values(self):
        self.assertEqual(
            markup.mapping({"a": None, "b": {"y": 2, "x": 1}, "c": [1]}),
            "<table><tr><td>a</td><td></td></tr>"
            "<tr><td>b</td><td>{&quot;x&quot;: 1, &quot;y&quot;: 2}</td></tr>"
            "<tr><td>c</td><td>[1]</td></tr></table>",
        )
        self.assertEqual(markup.mapping({}), "")

    def test_plot_and_note(self):
        self.assertEqual(
            markup.plot(b"png", 'a "b"'),
            '<img class="plot" alt="a &quot;b&quot;" '
            'src="data:image/png;base64,cG5n">',
        )
        self.assertEqual(markup.note("x < y"), '<p class="note">x &lt; y</p>')

    def test_doctest(self):
        failures, attempted = doctest.testmod(markup)
        self.assertEqual(failures, 0)
        self.assertGreater(attempted, 0)


if __name__ == "__main__":
    tf.test.main()
