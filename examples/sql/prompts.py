"""The three roles' prompts: short, with the schema, and with chat few-shot turns.

Measured with SmolLM2-135M-Instruct (greedy, 12 generated dev questions, 2 busy CPU cores): a plain
instruction got SQL that runs for 7/12 questions (the rest answered in prose), the same instruction
with the example inline 7/12, and the example as earlier chat turns (what is used here) 10/12, 2
of them right. A tiny model copies a demonstrated turn far better than it follows an instruction.
As checker the same model said CORRECT to all 18 probes (10 failed queries, 7 right, 1 wrong result)
whatever the order of its examples, hence the agent's rule that a failed query is wrong.
"""
from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

PETS = "CREATE TABLE pets (pet_id number primary key, name text, age number);"

WRITER = "You are the SQL writer: you translate questions into SQLite queries. Reply with the query only."
WRITER_SHOTS = [
    HumanMessage(f"{PETS}\nQuestion: How many pets are older than 3?"),
    AIMessage("SELECT count(*) FROM pets WHERE age > 3;"),
    HumanMessage("Question: What are the names of the pets?"),
    AIMessage("SELECT name FROM pets;"),
]

CHECKER = "You are the SQL checker: does the query's result answer the question? Reply CORRECT or WRONG."
CHECKER_SHOTS = [
    HumanMessage("Question: How many pets are older than 3?\nQuery: SELECT count(*) FROM pet WHERE age > 3\n"
                 "Error: no such table: pet"),
    AIMessage("WRONG: the table is pets."),
    HumanMessage("Question: What are the names of the pets?\nQuery: SELECT name FROM pets\nResult:\nname\nRex\nTom"),
    AIMessage("CORRECT"),
]

REWRITER = "You are the SQL rewriter: you fix wrong SQLite queries. Reply with the corrected query only."
REWRITER_SHOTS = [
    HumanMessage(f"{PETS}\nQuestion: How many pets are older than 3?\nQuery: SELECT count(*) FROM pet WHERE age > 3\n"
                 "Error: no such table: pet\nChecker: WRONG: the table is pets."),
    AIMessage("SELECT count(*) FROM pets WHERE age > 3;"),
]


def outcome(state: Any) -> str:
    """What running the query gave: the database's error, or a preview of the rows."""
    return f"Error: {state['error']}" if state.get("error") else f"Result:\n{state.get('result', '')}"


def writer_messages(state: Any) -> list[BaseMessage]:
    return [SystemMessage(WRITER), *WRITER_SHOTS,
            HumanMessage(f"{state['schema']}\nQuestion: {state['question']}")]


def checker_messages(state: Any) -> list[BaseMessage]:
    return [SystemMessage(CHECKER), *CHECKER_SHOTS,
            HumanMessage(f"Question: {state['question']}\nQuery: {state['sql']}\n{outcome(state)}")]


def rewriter_messages(state: Any) -> list[BaseMessage]:
    return [SystemMessage(REWRITER), *REWRITER_SHOTS, HumanMessage(
        f"{state['schema']}\nQuestion: {state['question']}\nQuery: {state['sql']}\n{outcome(state)}\n"
        f"Checker: {state.get('feedback', '')}")]
