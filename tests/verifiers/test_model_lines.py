"""Lines written by Qwen2.5-Coder models on GSM8K questions (copied from model_steps.jsonl).

Each line is judged as a person checking its arithmetic would; the 3-bit model's slips
must come out "wrong", unit conversions and algebra "cannot judge".
"""

from __future__ import annotations

import pytest

from verifiers import check_step

LINES = [
    # (line, expected status)
    (r"- Therefore, the total number of chairs for the indoor tables is \(9 \times 10 = 90\).", "correct"),
    (r"  15 \text{ seconds/egg} \times 60 \text{ eggs} = 900 \text{ seconds}", "correct"),
    (r"\frac{13500 \text{ seconds}}{60} = 225 \text{ minutes}", "correct"),
    (r"\text{Heather's pizzas on the first day} = 4 \times 40 = 160", "correct"),
    (r"\frac{1}{5} \times 200 = 40", "correct"),
    (r"   40\% \text{ of } 15 = 0.40 \times 15 = 6 \text{ cups}", "correct"),
    (r"   \frac{900 \text{ cents}}{75 \text{ cents per muffin}} = 12 \text{ muffins}", "correct"),
    (r"     2 \text{ pairs of jeans} \times \$10 \text{ per pair} = \$20", "correct"),
    (r"     \$15 + \$20 + \$16 = \$51", "correct"),
    (
        r"   \text{Number of shirts Andrew has} = 6 \times \text{Number of shirts Brian has} = 6 \times 3 = 18",
        "correct",
    ),
    (r"\frac{124,600}{2} = 62,300", "correct"),
    (r"\[ \frac{11}{3} = 3.67 \]", "correct"),
    (r"\[ \text{Aimee's score} = 2 \times (4 + 7) = 2 \times 11 = 22 \]", "correct"),
    (r"\[ 400000 \times (1 - 0.10) = 400000 \times 0.90 = 360000 \]", "correct"),
    (r"\[1000 + 100 \times 24 = 1000 + 2400 = 3400\]", "correct"),
    (r"\[ 4.2 + 3.8 + 3.6 + 4.4 = 16.0 \text{ miles} \]", "correct"),
    (r"   - Convert 30 minutes to hours: \(30 \text{ minutes} = \frac{30}{60} = 0.5\) hours.", "correct"),
    (r"\[ 6 \times 2.20 = 13.20 \]", "correct"),
    (r"   \text{Tip per person} = \frac{\$12}{3} = \$4", "correct"),
    ("- Discounted total cost = $45 * 0.10 = $4.50.", "correct"),
    (
        "3. Sabrina then gives two-thirds of her cookies to her sister. Since Sabrina gave her sister 5 cookies, "
        "her sister gives her 5 / 3 = 1.67 cookies (which is not a whole number, so we'll assume it's 2 cookies "
        "for the sake of this problem).",
        "correct",
    ),
    ("2. Divide this amount by 2 to find the number of bottles: 4.5 / 2 = 2.25", "correct"),
    (r"N = \frac{2400}{0.4} = 6000", "correct"),
    (r"\[ 15 = 3 \times 5 \]", "correct"),
    # slips, mostly from the 3-bit model
    (r"62,300 \div 10 = 623", "wrong"),
    (r"\text{Monthly payment on the house} = \frac{480,000}{240} = 20,000", "wrong"),
    (r"     \frac{28,980}{50,060} = 0.576", "wrong"),
    (r"\[ 324000 \times (1 - 0.20) = 324000 \times 0.80 = 264800 \]", "wrong"),
    (r"\[3400 + 100 \times 24 = 3400 + 2400 = 6800\]", "wrong"),
    (r"   - The difference is \(7.2 - 71 = -69.2\).", "wrong"),
    ("- The answer is $45 + $4.50 = $59.50.", "wrong"),
    ("   - The number of students in the 10th grade after 30 years is 180 + 30 = 150.", "wrong"),
    (r"\[ 150 + 30 - 15 = 185 \]", "wrong"),
    (r"   \text{Total appetizers needed} = 6 \, \text{appetizers/guest} \times 30 \, \text{guests}", "unknown"),
    # a list bullet opening a line is not a minus sign (a 1.5B line, once "corrected" to -150)
    ("   - 138 minus 12 equals 126.", "correct"),
    ("- 138 - 12 = -150", "wrong"),
    ("* 6 * 21 = 126", "correct"),
    ("so\n  + 4 + 5 = 9", "correct"),
    ("-138 - 12 = -150", "correct"),  # a sign glued to its number stays a sign
    # a number with a misplaced comma cannot be read (it was once "corrected" to "50,160,0560")
    (r"     30,000 + 2,880 \times 7 = 30,000 + 2,0560 = 50,060", "unknown"),
    ("1,08 * 100 = 108", "unknown"),
    ("30,000 + 2,880 * 7 = 30,000 + 20,160 = 50,060", "wrong"),
    # a subscript names a quantity (1.5B lines; the orchestrator once rewrote Distance_2 as Distance_208)
    (
        r"\text{Total Distance} = \text{Distance}_1 + \text{Distance}_2 = 140 \, \text{km} + 68 \, \text{km} "
        r"= 208 \, \text{km}",
        "correct",
    ),
    (r"\text{Distance}_1 = 70 \, \text{km/h} \times 2 \, \text{hours} = 140 \, \text{km}", "correct"),
    (r"\text{Distance}_{1} = 70 \times 2 = 140", "correct"),
    ("d_1 + d_2 = 140 + 68 = 208", "correct"),
    (r"\text{Distance}_1 = 70 \, \text{km/h} \times 2 \, \text{hours} = 150 \, \text{km}", "wrong"),
    # an item number in parentheses opening a line is not a factor
    ("(2) 3 + 4 = 7", "correct"),
    ("  (3) 10 - 4 = 6", "correct"),
    ("(2) 3 + 4 = 8", "wrong"),
    ("so (3 + 4) x 2 = 14", "correct"),
    # a bracketed number followed by an operator is the expression's first term, not an item number
    ("(20) - 5 - 3 = 12", "correct"),
    (r"(4) \times 3 + 2 = 14", "correct"),
    ("(12) + (3) + 1 = 16", "correct"),
    ("(20) - 5 - 3 = 13", "wrong"),
    ("a) 3 + 4 = 7", "correct"),
    # a sum of quantities in different units cannot be judged by its digits ("corrected" to 31 minutes)
    (
        r"   - Therefore, the time spent making fries is \(1 \text{ hour} + 30 \text{ minutes} = 40 \text{ minutes}\).",
        "unknown",
    ),
    (
        r"- Add the time spent making popcorn and fries together: \(1.5 \text{ hours} + 40 \text{ minutes} "
        r"= 45 \text{ minutes}\).",
        "unknown",
    ),
    (r"\(1 \text{ hour} + 30 \text{ minutes} = 90 \text{ minutes}\)", "unknown"),
    ("60 minutes + 30 minutes = 1.5 hours", "unknown"),
    ("$2 + 50 cents = $2.50", "unknown"),
    (r"\(60 \text{ minutes} + 30 \text{ minutes} = 70 \text{ minutes}\)", "wrong"),
    (r"\[ 2 \text{ hours} \times 60 \text{ minutes/hour} = 120 \text{ minutes} \]", "correct"),
    (r"\[ 24 + 34 + 8 = 86 \text{ feet} \]", "wrong"),
    # a percentage added to a number is a share ("$50 - 20%" is $40), not -0.2 ("corrected" to $49.8)
    ("a 20% discount: $50 - 20% = $40", "unknown"),
    ("100 + 10% = 110", "unknown"),
    ("80 * (1 - 25%) = 60", "correct"),
    ("80 - 25% of 80 = 60", "correct"),
    ("80 - 25% of 80 = 50", "wrong"),
    # a subscript on a command is an operation not supported (\log_2 8 is 3), not a name
    (r"\log_2 8 + 1 = 4", "unknown"),
    (r"\log_{2} 8 + 1 = 4", "unknown"),
    ("__2 x 3 + 4 = 10__", "correct"),
    ("__2 x 3 + 4 = 11__", "wrong"),
    # a whole number of times, with the remainder or the rounding said, is not the quotient
    ("10 / 3 = 3 with 1 left over", "unknown"),
    ("25 / 4 = 6 R1", "unknown"),
    ("50 / 8 = 7 (rounding up)", "unknown"),
    (r"\(\frac{50}{8} = 6\) full packs", "unknown"),
    ("50 / 8 = 5 (rounding down)", "wrong"),
    ("10 / 3 = 3", "wrong"),
    ("He walks 7 / 2 = 3 miles up the hill.", "wrong"),  # ordinary words nearby are no cue
    ("Half of the remaining 15 apples is 15 / 2 = 8 apples.", "wrong"),
    # a number right after a label names something: no result written first
    ("Day 3 = 5 + 2 = 7", "correct"),
    ("Q3 = 12 + 5 = 17", "correct"),
    ("10% = 0.1 x 50 = 5", "correct"),
    ("Day 3 = 5 + 2 = 8", "wrong"),
    (r"\(16 = 3 \times 5\)", "wrong"),
    # a rewriting with a rounded decimal is not a slip, and the exact value may follow it (0.5B line)
    (r"12 \times \frac{5}{6} = 12 \times 0.8333 = 10", "correct"),
    (r"100 / 3 = 100 \times 0.33 = 33", "correct"),
    (r"12 \times \frac{5}{6} = 12 \times 0.8333 = 10.6667", "wrong"),
    (r"100 \times 1.5 = 100 \times 1.4 = 140", "wrong"),
    ("100 + 3 = 100 + 0.4", "wrong"),  # no division to round: a slip, however small the term
    ("1.5 + 0.3 = 1.5 + 0.2 = 1.7", "wrong"),
    ("10 - 0.3 = 10 - 0.4 = 9.6", "wrong"),
    ("2/3 = 0.67", "correct"),
    # algebra and code: not arithmetic claims
    ("0.4N = 2400", "unknown"),
    (r"40 + 28 + \text{Layla's apples} = 78 + \text{Layla's apples}", "unknown"),
    ("appetizers_per_guest = 6", "unknown"),
    (r"\[ \text{Total} = \frac{1}{2} \sum_{n=1}^{n-1} \frac{n}{n+1} \]", "unknown"),
]


@pytest.mark.parametrize(("line", "status"), LINES)
def test_model_line(line: str, status: str) -> None:
    verdict = check_step(line)
    assert verdict.status == status, verdict


@pytest.mark.parametrize(("line", "status"), [row for row in LINES if row[1] == "wrong"])
def test_model_slip_has_a_correction(line: str, status: str) -> None:
    verdict = check_step(line)
    assert verdict.corrected_text is not None and verdict.corrected_text != line


@pytest.mark.parametrize(
    ("line", "fixed"),
    [
        ("(2) 3 + 4 = 8", "(2) 3 + 4 = 7"),
        ("Day 3 = 5 + 2 = 8", "Day 3 = 5 + 2 = 7"),
        (r"\text{Distance}_1 = 70 \times 2 = 150", r"\text{Distance}_1 = 70 \times 2 = 140"),
    ],
)
def test_label_numbers_are_left_alone_by_a_correction(line: str, fixed: str) -> None:
    assert check_step(line).corrected_text == fixed
