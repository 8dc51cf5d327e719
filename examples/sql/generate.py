"""Small Text-to-SQL datasets in the Spider layout: SQLite databases, ``tables.json``, questions + gold SQL.

No Spider data ships on PyPI and the demo runs offline, so this writes a Spider-shaped dataset from a
few schemas (a shop: customers/orders; a school: students/courses/enrollments; a company:
departments/employees), filled with seeded random rows, and questions made from templates (SELECT,
WHERE, COUNT/SUM/AVG/MAX, GROUP BY, ORDER BY, one JOIN) whose constants are drawn from the data, so
every gold query returns rows. ``load_spider`` reads the result like the real thing.

    out/tables.json  out/train_spider.json  out/dev.json  out/database/<db_id>/<db_id>.sqlite

The dev questions never repeat a train question (same databases, different questions); when asked
for more train questions than the templates can make, train questions repeat. The questions JSON
carries ``db_id, question, query, question_toks, query_toks, query_toks_no_value`` (not Spider's parsed
``sql`` tree, which no loader here needs).
"""
from __future__ import annotations

import json
import random
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

FIRST = ["Ada", "Ben", "Cleo", "Dan", "Eva", "Finn", "Gus", "Hana", "Ivy", "Jon", "Kai", "Lea", "Max", "Nia",
         "Otto", "Pia", "Quin", "Rosa", "Sam", "Tess", "Uma", "Vic", "Wes", "Yara", "Zoe"]
LAST = ["Smith", "Lee", "Khan", "Garcia", "Brown", "Novak", "Rossi", "Silva", "Meyer", "Tanaka", "Dubois", "Kim"]
CITIES = ["Paris", "Lima", "Oslo", "Cairo", "Tokyo", "Boston", "Delhi", "Rome"]
PRODUCTS = ["laptop", "phone", "desk", "chair", "lamp", "monitor", "printer"]
MAJORS = ["Biology", "History", "Physics", "Music", "Economics"]
DEPARTMENTS = ["Math", "Art", "Chemistry", "Law", "Computing"]
TITLES = ["Algebra", "Painting", "Organic Chemistry", "Contracts", "Databases", "Statistics", "Sculpture",
          "Ethics", "Networks", "Geometry", "Poetry", "Genetics"]
JOB_TITLES = ["engineer", "manager", "analyst", "designer", "clerk"]
TEAMS = ["Sales", "Research", "Support", "Finance", "Marketing"]


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str  # SQLite type
    spider_type: str  # tables.json type: "number" | "text"
    primary: bool = False
    references: str = ""  # "table.column"


Tables = dict[str, list[Column]]
Rows = dict[str, list[tuple]]
Template = Callable[[Rows], Iterator[tuple[str, str]]]


def _c(name: str, kind: str, **kw: Any) -> Column:
    return Column(name, "INTEGER" if kind == "int" else "REAL" if kind == "real" else "TEXT",
                  "text" if kind == "text" else "number", **kw)


def _names(rng: random.Random, n: int) -> list[str]:
    pool = [f"{a} {b}" for a in FIRST for b in LAST]
    return rng.sample(pool, min(n, len(pool)))


def _distinct(rows: list[tuple], index: int) -> list[Any]:
    return sorted({r[index] for r in rows})


# -- shop ---------------------------------------------------------------------------------------------
SHOP: Tables = {
    "customers": [_c("customer_id", "int", primary=True), _c("name", "text"), _c("city", "text"), _c("age", "int")],
    "orders": [_c("order_id", "int", primary=True), _c("customer_id", "int", references="customers.customer_id"),
               _c("product", "text"), _c("quantity", "int"), _c("amount", "real")],
}


def shop_rows(rng: random.Random, size: int) -> Rows:
    customers = [(i + 1, name, rng.choice(CITIES[:4 + size // 10]), rng.randint(18, 70))
                 for i, name in enumerate(_names(rng, size))]
    orders = [(i + 1, rng.randint(1, len(customers)), rng.choice(PRODUCTS), rng.randint(1, 5),
               round(rng.uniform(5, 500), 2)) for i in range(size * 2)]
    return {"customers": customers, "orders": orders}


def shop_questions(rows: Rows) -> Iterator[tuple[str, str]]:
    customers, orders = rows["customers"], rows["orders"]
    yield "How many customers are there?", "SELECT count(*) FROM customers"
    yield "How many orders are there?", "SELECT count(*) FROM orders"
    yield "What is the average age of the customers?", "SELECT avg(age) FROM customers"
    yield "What is the total amount of all orders?", "SELECT sum(amount) FROM orders"
    yield "What is the largest order amount?", "SELECT max(amount) FROM orders"
    yield "How many customers live in each city?", "SELECT city, count(*) FROM customers GROUP BY city"
    yield "How many orders are there for each product?", "SELECT product, count(*) FROM orders GROUP BY product"
    yield "List the names of all customers in alphabetical order.", "SELECT name FROM customers ORDER BY name"
    for city in _distinct(customers, 2):
        yield f"What are the names of the customers who live in {city}?", \
            f"SELECT name FROM customers WHERE city = '{city}'"
        yield f"How many customers live in {city}?", f"SELECT count(*) FROM customers WHERE city = '{city}'"
    ages = _distinct(customers, 3)
    for age in ages[: max(1, len(ages) - 1): 3]:
        yield f"What are the names of the customers older than {age}?", \
            f"SELECT name FROM customers WHERE age > {age}"
    for product in _distinct(orders, 2):
        yield f"How many orders are for a {product}?", f"SELECT count(*) FROM orders WHERE product = '{product}'"
        yield f"What is the total quantity of {product} ordered?", \
            f"SELECT sum(quantity) FROM orders WHERE product = '{product}'"
    for customer_id, name, *_ in customers[:8]:
        if any(o[1] == customer_id for o in orders):
            yield f"How many orders did {name} place?", ("SELECT count(*) FROM orders JOIN customers ON "
                                                         "orders.customer_id = customers.customer_id "
                                                         f"WHERE customers.name = '{name}'")


# -- school -------------------------------------------------------------------------------------------
SCHOOL: Tables = {
    "students": [_c("student_id", "int", primary=True), _c("name", "text"), _c("major", "text"), _c("year", "int")],
    "courses": [_c("course_id", "int", primary=True), _c("title", "text"), _c("department", "text"),
                _c("credits", "int")],
    "enrollments": [_c("student_id", "int", references="students.student_id"),
                    _c("course_id", "int", references="courses.course_id"), _c("grade", "int")],
}


def school_rows(rng: random.Random, size: int) -> Rows:
    students = [(i + 1, name, rng.choice(MAJORS), rng.randint(1, 4)) for i, name in enumerate(_names(rng, size))]
    titles = rng.sample(TITLES, min(len(TITLES), max(3, size // 2)))
    courses = [(i + 1, title, rng.choice(DEPARTMENTS), rng.choice([2, 3, 4, 6])) for i, title in enumerate(titles)]
    pairs = rng.sample([(s[0], c[0]) for s in students for c in courses], min(size * 2, len(students) * len(courses)))
    enrollments = [(s, c, rng.randint(50, 100)) for s, c in sorted(pairs)]
    return {"students": students, "courses": courses, "enrollments": enrollments}


def school_questions(rows: Rows) -> Iterator[tuple[str, str]]:
    students, courses = rows["students"], rows["courses"]
    yield "How many students are there?", "SELECT count(*) FROM students"
    yield "How many courses are there?", "SELECT count(*) FROM courses"
    yield "What is the average grade over all enrollments?", "SELECT avg(grade) FROM enrollments"
    yield "How many students are there in each major?", "SELECT major, count(*) FROM students GROUP BY major"
    yield "How many courses does each department offer?", \
        "SELECT department, count(*) FROM courses GROUP BY department"
    yield "List the course titles in alphabetical order.", "SELECT title FROM courses ORDER BY title"
    for major in _distinct(students, 2):
        yield f"What are the names of the students majoring in {major}?", \
            f"SELECT name FROM students WHERE major = '{major}'"
    for year in _distinct(students, 3):
        yield f"How many students are in year {year}?", f"SELECT count(*) FROM students WHERE year = {year}"
    for department in _distinct(courses, 2):
        yield f"What are the titles of the courses in the {department} department?", \
            f"SELECT title FROM courses WHERE department = '{department}'"
    for credits in _distinct(courses, 3)[:-1]:
        yield f"What are the titles of the courses with more than {credits} credits?", \
            f"SELECT title FROM courses WHERE credits > {credits}"


# -- company ------------------------------------------------------------------------------------------
COMPANY: Tables = {
    "departments": [_c("department_id", "int", primary=True), _c("name", "text"), _c("city", "text")],
    "employees": [_c("employee_id", "int", primary=True), _c("name", "text"),
                  _c("department_id", "int", references="departments.department_id"), _c("title", "text"),
                  _c("salary", "int")],
}


def company_rows(rng: random.Random, size: int) -> Rows:
    teams = rng.sample(TEAMS, min(len(TEAMS), max(2, size // 4)))
    departments = [(i + 1, team, rng.choice(CITIES)) for i, team in enumerate(teams)]
    employees = [(i + 1, name, rng.randint(1, len(departments)), rng.choice(JOB_TITLES),
                  rng.randrange(30_000, 120_000, 1_000)) for i, name in enumerate(_names(rng, size))]
    return {"departments": departments, "employees": employees}


def company_questions(rows: Rows) -> Iterator[tuple[str, str]]:
    departments, employees = rows["departments"], rows["employees"]
    yield "How many employees are there?", "SELECT count(*) FROM employees"
    yield "What is the highest salary?", "SELECT max(salary) FROM employees"
    yield "What is the average salary for each title?", "SELECT title, avg(salary) FROM employees GROUP BY title"
    yield "List the names of all departments in alphabetical order.", "SELECT name FROM departments ORDER BY name"
    for title in _distinct(employees, 3):
        yield f"How many employees have the title {title}?", f"SELECT count(*) FROM employees WHERE title = '{title}'"
        yield f"What are the names of the employees whose title is {title}?", \
            f"SELECT name FROM employees WHERE title = '{title}'"
    for city in _distinct(departments, 2):
        yield f"Which departments are located in {city}?", f"SELECT name FROM departments WHERE city = '{city}'"
    salaries = _distinct(employees, 4)
    for salary in salaries[: max(1, len(salaries) - 1): 4]:
        yield f"What are the names of the employees who earn more than {salary}?", \
            f"SELECT name FROM employees WHERE salary > {salary}"
    for _, name, _ in departments:
        yield f"How many employees work in the {name} department?", \
            ("SELECT count(*) FROM employees JOIN departments ON employees.department_id = "
             f"departments.department_id WHERE departments.name = '{name}'")


SCHEMAS: dict[str, tuple[Tables, Callable[[random.Random, int], Rows], Template]] = {
    "shop": (SHOP, shop_rows, shop_questions),
    "school": (SCHOOL, school_rows, school_questions),
    "company": (COMPANY, company_rows, company_questions),
}


# -- writing the Spider layout ------------------------------------------------------------------------
def tables_entry(db_id: str, tables: Tables) -> dict[str, Any]:
    """One ``tables.json`` entry (column 0 is Spider's ``[-1, "*"]``)."""
    names = list(tables)
    columns: list[list[Any]] = [[-1, "*"]]
    types = ["text"]
    index: dict[str, int] = {}
    primary, foreign = [], []
    for t, table in enumerate(names):
        for column in tables[table]:
            index[f"{table}.{column.name}"] = len(columns)
            if column.primary:
                primary.append(len(columns))
            columns.append([t, column.name])
            types.append(column.spider_type)
    for table in names:
        for column in tables[table]:
            if column.references:
                foreign.append([index[f"{table}.{column.name}"], index[column.references]])
    return {"db_id": db_id, "table_names_original": names, "table_names": [n.replace("_", " ") for n in names],
            "column_names_original": columns,
            "column_names": [[t, name if t < 0 else name.replace("_", " ")] for t, name in columns],
            "column_types": types, "primary_keys": primary, "foreign_keys": foreign}


def write_database(path: Path, tables: Tables, rows: Rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    try:
        for table, columns in tables.items():
            defs = []
            for c in columns:
                text = f"{c.name} {c.sql_type}" + (" PRIMARY KEY" if c.primary else "")
                if c.references:
                    ref_table, ref_column = c.references.split(".")
                    text += f" REFERENCES {ref_table}({ref_column})"
                defs.append(text)
            conn.execute(f"CREATE TABLE {table} ({', '.join(defs)})")
            marks = ", ".join("?" * len(columns))
            conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
        conn.commit()
    finally:
        conn.close()


_QUESTION_TOKENS = re.compile(r"\w+|[^\w\s]")
_SQL_TOKENS = re.compile(r"'(?:[^']|'')*'|\d+(?:\.\d+)?|\w+(?:\.\w+)?|!=|>=|<=|[^\w\s]")


def question_record(db_id: str, question: str, query: str) -> dict[str, Any]:
    query_toks = _SQL_TOKENS.findall(query)
    no_value = ["value" if t.startswith("'") or t[0].isdigit() else t.lower() for t in query_toks]
    return {"db_id": db_id, "query": query, "query_toks": query_toks, "query_toks_no_value": no_value,
            "question": question, "question_toks": _QUESTION_TOKENS.findall(question)}


def generate(out_dir: Path, n_train: int, n_test: int, seed: int = 0, *, rows: int = 12,
             dbs_per_schema: int = 1, schemas: tuple[str, ...] = tuple(SCHEMAS)) -> dict[str, Path]:
    """Write databases + ``tables.json`` + ``train_spider.json``/``dev.json`` under ``out_dir``.

    ``rows`` sets the size of the main tables (customers, students, employees; orders get twice as
    many); ``dbs_per_schema`` makes several differently-filled databases per schema (more questions).
    Returns ``{"train", "test", "tables", "database"}``.
    """
    if n_train < 0 or n_test < 0 or rows < 2:
        raise ValueError("n_train and n_test must be >= 0 and rows >= 2")
    rng = random.Random(seed)
    out = Path(out_dir)
    entries, pool = [], []
    for schema in schemas:
        tables, fill, questions = SCHEMAS[schema]
        for k in range(1, dbs_per_schema + 1):
            db_id = f"{schema}_{k}"
            data = fill(rng, rows)
            write_database(out / "database" / db_id / f"{db_id}.sqlite", tables, data)
            entries.append(tables_entry(db_id, tables))
            seen = set()
            for question, query in questions(data):
                if query not in seen:
                    seen.add(query)
                    pool.append(question_record(db_id, question, query))
    rng.shuffle(pool)
    if n_test > len(pool) - (1 if n_train else 0):
        raise ValueError(f"only {len(pool)} distinct questions: ask for fewer test questions or more "
                         "rows / dbs_per_schema")
    test, rest = pool[:n_test], pool[n_test:]
    train = [rest[i % len(rest)] for i in range(n_train)] if rest else []
    files = {"train": out / "train_spider.json", "test": out / "dev.json", "tables": out / "tables.json",
             "database": out / "database"}
    for key, value in (("train", train), ("test", test), ("tables", entries)):
        files[key].write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")
    return files
