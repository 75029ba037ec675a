// Proves the in-memory store honours the store contract.
import { MemoryStore } from "../../src/store/memory-store.js";
import { runStoreContract } from "./store-contract.js";

runStoreContract("memory", ({ clock }) => new MemoryStore({ clock }));
