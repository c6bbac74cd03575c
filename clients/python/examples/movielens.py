"""MovieLens-100K with the magpie package, in the order of a notebook: load, fit, evaluate, recommend with reasons.

    /usr/bin/python3 clients/python/examples/movielens.py [--data DIR] [--quick]

DIR defaults to ../shared/data/ml-100k beside the repository (u.data: user, item, rating, unix time, tab
separated; u.item: `|`-separated, title in the second field; see that directory's SOURCE.md). --quick uses the
first 200 users and fewer iterations (the test suite runs it so). The library is found as the package finds it
(MAGPIE_LIB, then the repository's build/).
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
DEFAULT_DATA = os.path.normpath(os.path.join(REPO, "..", "shared", "data", "ml-100k"))

# %% arguments
ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--data", default=DEFAULT_DATA, help="the ml-100k directory (default: %(default)s)")
ap.add_argument("--quick", action="store_true", help="first 200 users, fewer iterations")
args = ap.parse_args()

ratings_path = os.path.join(args.data, "u.data")
items_path = os.path.join(args.data, "u.item")
if not (os.path.exists(ratings_path) and os.path.exists(items_path)):
    print(f"MovieLens-100K is not at {args.data} (need u.data and u.item): nothing to do. Put the dataset there "
          f"or pass --data DIR.")
    sys.exit(0)

sys.path.insert(0, os.path.dirname(HERE))  # run from a checkout without installing
import pandas as pd  # noqa: E402

import magpie  # noqa: E402

# %% load the ratings into a DataFrame of events (user, item, type, ts, value)
ratings = pd.read_csv(ratings_path, sep="\t", names=["user", "item", "value", "ts"])
ratings["type"] = "rating"
movies = pd.read_csv(items_path, sep="|", header=None, encoding="latin-1", usecols=[0, 1], names=["item", "title"])
if args.quick:
    ratings = ratings[ratings.user <= 200]
print(f"{len(ratings)} ratings by {ratings.user.nunique()} users of {ratings.item.nunique()} movies")

ds = magpie.Dataset.from_events(ratings, item_titles=dict(zip(movies.item, movies.title)))
print(ds)

# %% fit ALS (implicit feedback: every rating counts as an interaction, weighted by the rating event's weight)
params = dict(factors=32, iterations=4 if args.quick else 15, seed=1)
t0 = time.perf_counter()
model = magpie.Model("als", **params).fit(ds, show_progress=False)
print(f"fitted {model} in {time.perf_counter() - t0:.2f} s")

# %% evaluate: leave-last-one-out, full ranking, as `magpie eval --protocol loo` does
df = magpie.evaluate("als", ds, protocol="loo", k=(10,), show_progress=False, **params)
overall = df[df.group == "overall"].iloc[0]
print(f"leave-last-one-out over {overall.users} users: HR@10 {overall.hr:.4f}  NDCG@10 {overall.ndcg:.4f}  "
      f"coverage@10 {overall.coverage:.3f}")
print(df[["group", "k", "users", "hr", "ndcg", "recall", "coverage"]].to_string(index=False))

# %% recommend for a few users, with the model's reasons (integer user ids are the dataset's dense ids, as in
# implicit; ds.user_ids maps them to MovieLens's ids, ds.user_index the other way)
users = [0, 1, 2]
ids, scores = model.recommend(users, N=5)
for j, u in enumerate(users):
    print(f"\nuser {ds.user_ids[u]} ({len(ds.history(u))} ratings):")
    for rank, (i, s) in enumerate(zip(ids[j], scores[j]), 1):
        print(f"  {rank}. {ds.item_titles[i]:<45} {s:6.3f}  {model.explain(u, int(i))}")

# %% similar movies
star_wars = ds.item_index(50)  # movie id 50 in u.item
sim, _ = model.similar_items(star_wars, N=5)
print(f"\nmovies like {ds.item_titles[star_wars]}: " + "; ".join(ds.item_titles[i] for i in sim))
