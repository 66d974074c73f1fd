/* The labelled IDX splits the evaluation tools read: test (t10k-*), train
 * (train-*), and val: the images of the training set listed in an index
 * file (models/fmnist-val-index.txt, from train/val_index.py: the split
 * train/data.py holds out). */
#ifndef EEX_SPLIT_H
#define EEX_SPLIT_H

#include "idx.h"

/* Loads DIR's images and, when labels is not NULL, labels of `split`; for
 * val, keeps the rows listed in val_index. Errors print "eex CMD: ..." and
 * return CLI_FAIL. labels == NULL never opens the labels file. */
int split_load(const char *cmd, const char *dir, const char *split, const char *val_index, idx_array *images,
               idx_array *labels);

#endif
